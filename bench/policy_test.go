// Package bench holds relaykeeper's Go benchmarks; run.sh beside it is the
// end-to-end throughput benchmark.
package bench

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/policy"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

const (
	senderLines = 10000
	cidrLines   = 1000
)

// policyEngine builds the engine as the relay's buildPolicy does for
//
//	[policy]
//	relay_domains = ["relay.example"]
//	client_restrictions = ["check_client_access cidr:client.cidr"]
//	sender_restrictions = ["check_sender_access hash:sender_access"]
//	(relay_restrictions and mynetworks at their defaults)
//
// with a sender_access of 10,000 domains and a client.cidr of 1,000
// networks, none of which matches the benchmark's client.
func policyEngine(b *testing.B) *policy.Engine {
	b.Helper()
	dir := b.TempDir()
	var s strings.Builder
	for i := range senderLines {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&s, "spammer%d.example REJECT\n", i)
		case 1:
			fmt.Fprintf(&s, "user%d@bulk.example 550 5.7.1 go away\n", i)
		case 2:
			fmt.Fprintf(&s, "later%d.example DEFER\n", i)
		default:
			fmt.Fprintf(&s, "friend%d.example OK\n", i)
		}
	}
	sender := filepath.Join(dir, "sender_access")
	if err := os.WriteFile(sender, []byte(s.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	s.Reset()
	for i := range cidrLines {
		fmt.Fprintf(&s, "10.%d.%d.0/24 REJECT\n", i/256, i%256)
	}
	client := filepath.Join(dir, "client.cidr")
	if err := os.WriteFile(client, []byte(s.String()), 0o644); err != nil {
		b.Fatal(err)
	}

	var mynetworks []netip.Prefix
	for _, p := range []string{"127.0.0.0/8", "::1/128", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7", "169.254.0.0/16", "fe80::/10"} {
		mynetworks = append(mynetworks, netip.MustParsePrefix(p))
	}
	tables := &table.Set{}
	e, err := policy.New(policy.Options{
		MyNetworks:   mynetworks,
		RelayDomains: []string{"relay.example"},
		Client:       []string{"check_client_access cidr:" + client},
		Sender:       []string{"check_sender_access hash:" + sender},
		Relay:        []string{"permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"},
		Tables:       policy.SetTables{Set: tables},
	})
	if err != nil {
		b.Fatal(err)
	}
	return e
}

// BenchmarkPolicyCheck is what the relay policy costs per recipient (the
// relay calls Check once per RCPT) for a client outside mynetworks, not
// logged in, whose address and sender are in neither table (every lookup
// key is tried):
//
//   - permitted: a recipient in relay_domains;
//   - rejected: a recipient elsewhere (reject_unauth_destination, 554);
//   - sender-rejected: a sender the 10,000-line table refuses.
func BenchmarkPolicyCheck(b *testing.B) {
	e := policyEngine(b)
	client := netip.MustParseAddr("198.51.100.7")
	cases := []struct {
		name, sender, rcpt string
		want               policy.Verdict
	}{
		{"permitted", "someone@sub.mail.unlisted.example", "user@relay.example", policy.Permit},
		{"rejected", "someone@sub.mail.unlisted.example", "victim@elsewhere.example", policy.Reject},
		{"sender-rejected", "x@spammer4000.example", "user@relay.example", policy.Reject},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			req := policy.Request{ClientIP: client, ClientAddr: "198.51.100.7:40000", Helo: "client.example",
				Sender: c.sender, Recipient: c.rcpt}
			if d := e.Check(context.Background(), policy.StageRcpt, &req); d.Verdict != c.want {
				b.Fatalf("Check(%s -> %s) = %v %q; want %v", c.sender, c.rcpt, d.Verdict, d.Reply(), c.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				e.Check(context.Background(), policy.StageRcpt, &req)
			}
		})
	}
}
