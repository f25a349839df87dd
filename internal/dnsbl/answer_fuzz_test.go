package dnsbl

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// FuzzAnswer: whatever a blocklist's DNS server answers for a client (any
// A record, any TXT text with escapes, control characters and 8-bit bytes,
// in several records), the client is listed only for a 127.0.0.x code
// the zone's filter takes, and the reply text that names the list is one
// line of at most maxReplyText octets without a control character.
func FuzzAnswer(f *testing.F) {
	f.Add([]byte{127, 0, 0, 2}, "listed in a, see https://a.example/?192.0.2.1", "")
	f.Add([]byte{127, 255, 255, 254}, "", "")
	f.Add([]byte{127, 0, 0, 4}, "x\r\n250 ok\x00\x7f", `\013\010"quoted\"`)
	f.Add([]byte{10, 0, 0, 2}, strings.Repeat("é", 400), strings.Repeat("y", 600))
	z, err := ParseRBLSpec("bl.example=127.0.[0;1].[2..9]")
	if err != nil {
		f.Fatal(err)
	}
	const name = "1.2.0.192.bl.example"
	f.Fuzz(func(t *testing.T, a []byte, txt1, txt2 string) {
		if len(a) != 4 {
			return
		}
		code := netip.AddrFrom4([4]byte(a))
		dns := harness.StartDNS(t, "")
		c := New(Config{Threshold: 1, Timeout: 2 * time.Second, Server: dns.Addr(), Zones: []Zone{z}})
		dns.Set(name, "A", code.String())
		var txts []string
		for _, s := range []string{txt1, txt2} {
			if s != "" {
				txts = append(txts, s)
			}
		}
		dns.Set(name, "TXT", txts...)
		res, err := c.Check(context.Background(), netip.MustParseAddr("192.0.2.1"))
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		want := a[0] == 127 && a[1] == 0 && a[2] <= 1 && a[3] >= 2 && a[3] <= 9
		if res.Listed != want {
			t.Fatalf("A %s: listed %v", code, res.Listed)
		}
		if !res.Listed {
			return
		}
		text := res.RejectText(netip.MustParseAddr("192.0.2.1"))
		if len(text) > maxReplyText || strings.ContainsFunc(text, func(r rune) bool { return r < ' ' || r == 0x7f }) {
			t.Fatalf("TXT %q, %q: reply text %q", txt1, txt2, text)
		}
	})
}
