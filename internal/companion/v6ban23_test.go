package companion

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/postfixlog"
)

// TestV6ban23CompanionBansIPv6Network: postfix-enforcer's ban of an IPv6
// client is of its /64 (--ban-ipv6-prefix-length): the action line says
// prefix=, and the bannable line for fail2ban ends in the network, which
// the shipped filter's <SUBNET> bans whole. Before, the line ended in the
// client's address, and the spammer moved to the next one. A client whose
// /64 holds a welcomelisted address or one of Postfix's mynetworks is
// banned alone (fail2ban would cut the neighbour off), an IPv4-mapped
// client is IPv4, and text the client chose (its recipient, quoted) never
// makes the line end in another network. A ban line waiting in the state
// of the version before networks (no Net) is written for the address.
func TestV6ban23CompanionBansIPv6Network(t *testing.T) {
	dir := t.TempDir()
	wlPath := filepath.Join(dir, "welcomelist")
	os.WriteFile(wlPath, []byte("2001:db8:5:5::99\n"), 0o644)
	wl, err := enforce.OpenWelcomelist(wlPath)
	if err != nil {
		t.Fatal(err)
	}
	var lines revEnf2Sink
	w := enforce.NewBanWriter(&lines, nil, nil, nil)
	var out strings.Builder
	c := New(Options{SenderAccess: filepath.Join(dir, "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test",
		Spare: &enforce.Spared{Welcome: wl, Nets: []netip.Prefix{netip.MustParsePrefix("2001:db8:7:7::/120")}}},
		enforce.Policy{Rules: enforce.DefaultRules(), Welcome: wl}, &postfixlog.Tracker{Reinjection: postfixlog.ReinjectNever},
		w, maillog.New(&out), nil)
	tests := []struct{ q, client, to, net string }{
		{"4A0001ABC1", "2001:db8:1:2::7", "u1@gmail.test", "2001:db8:1:2::/64"},
		{"4A0002ABC2", "2001:db8:5:5::7", "u2@gmail.test", "2001:db8:5:5::7"},
		{"4A0003ABC3", "2001:db8:7:7::1:7", "u3@gmail.test", "2001:db8:7:7::1:7"},
		{"4A0004ABC4", "::ffff:203.0.113.7", "u4@gmail.test", "203.0.113.7"},
		{"4A0005ABC5", "2001:db8:3:3::7", `"x 2001:db8:9::/48"@gmail.test`, "2001:db8:3:3::/64"},
	}
	for _, tt := range tests {
		for l := range strings.Lines(message(tt.q, tt.client, "a@spam.example", tt.to, "m-"+tt.q+"@x", fmt.Sprintf(unsolicited, tt.q))) {
			c.Line(strings.TrimSuffix(l, "\n"))
		}
	}
	w.Flush()
	// Each ban's own line ends in the client's address, as relay-enforcer's
	// (its manual's jail matches <HOST> there); a ban of a network adds a
	// "bannable-network" line ending in it, for the shipped filter's <SUBNET>.
	var want []string
	for _, tt := range tests {
		client := strings.TrimPrefix(tt.client, "::ffff:")
		want = append(want, "bannable . "+client)
		if tt.net != client {
			want = append(want, "bannable-network . "+tt.net)
		}
	}
	if len(lines) != len(want) {
		t.Fatalf("ban lines %q; want %d\nactions:\n%s", lines, len(want), out.String())
	}
	for i, w := range want {
		kw, end, _ := strings.Cut(w, " . ")
		if !strings.HasPrefix(lines[i], kw+" ") || !strings.HasSuffix(lines[i], " "+end) {
			t.Errorf("ban line %d: %q; want %s ... %s", i, lines[i], kw, end)
		}
	}
	for _, tt := range tests {
		p, _ := enforce.ParseBanTarget(tt.net)
		if want := "prefix=" + p.String() + " "; !strings.Contains(out.String(), want) {
			t.Errorf("actions:\n%s\nwant %q for %s", out.String(), want, tt.client)
		}
	}
	// A ban waiting in an older state has no Net: its address alone.
	w.Add(time.Time{}, enforce.BanEvent{Client: netip.MustParseAddr("2001:db8:8:8::1"), Reason: "old"})
	if last := lines[len(lines)-1]; last != "bannable old 2001:db8:8:8::1" {
		t.Errorf("ban line of an older state's ban: %q", last)
	}
}
