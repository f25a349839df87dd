package bench

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
)

// BenchmarkDecide is the enforcement decision (enforce.Decide) on each of
// Gmail's replies in internal/enforce/testdata/gmail-replies.txt, as
// Postfix logs them (lines joined): rules, welcomelist, reply filter.
func BenchmarkDecide(b *testing.B) {
	data, err := os.ReadFile("../internal/enforce/testdata/gmail-replies.txt")
	if err != nil {
		b.Fatal(err)
	}
	var refusals []enforce.Refusal
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.SplitN(line, " ", 5)
		if line == "" || line[0] == '#' || len(f) != 5 {
			continue
		}
		r, err := enforce.ParseReply(f[2] + " " + f[3] + " " + f[4] + " a1si2 - gsmtp")
		if err != nil {
			b.Fatal(err)
		}
		refusals = append(refusals, enforce.Refusal{ID: "Q", Client: netip.MustParseAddr("203.0.113.9"),
			From: "a@b.example", To: []string{"c@gmail.test"}, Upstream: r})
	}
	wl, err := enforce.OpenWelcomelist(b.TempDir() + "/welcomelist")
	if err != nil {
		b.Fatal(err)
	}
	p := enforce.Policy{Rules: enforce.DefaultRules(), Filter: enforce.DefaultReplyFilter(), Welcome: wl}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		enforce.Decide(p, refusals[i%len(refusals)])
	}
}
