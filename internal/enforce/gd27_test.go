package enforce

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestGd27DotKeyDoesNotListDomain: a sender_access key ".other.example"
// matches only the subdomains of other.example (access(5): and only when
// smtpd_access_maps is not in parent_domain_matches_subdomains; by
// Postfix's default it matches nothing), never other.example itself. The
// enforcer took it for an entry of other.example and never blocked the
// domain Gmail named. Parents still count in both forms.
func TestGd27DotKeyDoesNotListDomain(t *testing.T) {
	tests := []struct {
		table, domain string
		added         bool
	}{
		{".other.example REJECT\n", "other.example", true},
		{".OTHER.example OK\n", "other.example", true},
		{".other.example REJECT\n", "sub.other.example", false},
		{"other.example OK\n", "sub.other.example", false},
		{"other.example OK\n", "other.example", false},
		{".example OK\n", "other.example", false},
		{"example OK\n", "other.example", false},
		{".sub.other.example REJECT\n", "other.example", true},
	}
	for _, tt := range tests {
		path := filepath.Join(t.TempDir(), "sender_access")
		if err := os.WriteFile(path, []byte(tt.table), 0o644); err != nil {
			t.Fatal(err)
		}
		added, err := BlockSenderDomainText(path, tt.domain, "gd27", time.Unix(0, 0))
		if err != nil || added != tt.added {
			t.Errorf("table %q: BlockSenderDomainText(%q) = %v, %v; want %v", tt.table, tt.domain, added, err, tt.added)
		}
		if b, _ := os.ReadFile(path); added && !strings.Contains(string(b), "\n"+tt.domain+" REJECT\n") {
			t.Errorf("table after blocking %s:\n%s", tt.domain, b)
		}
	}
}

// TestGd27EncapsulateRateLimit: Gmail refuses a client's every message
// for DMARC (encapsulate); the relay sent one copy per refused message,
// without end. With EncapsulateRateLimit 3, the client's first three
// refusals are encapsulated, the fourth is not (its sender hears the
// refusal), another client still gets its copies, and the first client's
// copies come back as the hour refills the bucket.
func TestGd27EncapsulateRateLimit(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	orig := filepath.Join(dir, "original.eml")
	os.WriteFile(orig, []byte("From: Carol <carol@dmarc.example>\r\nTo: dave@gmail.test\r\nSubject: hi\r\n\r\nhello\r\n"), 0o600)
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, Spool: sp,
		RelayAddress: "postmaster@relay.example", EncapsulateRateLimit: 3, Now: func() time.Time { return now }}
	act := func(id, client string) Outcome {
		return e.Act(context.Background(), Refusal{ID: id, Client: netip.MustParseAddr(client), From: "carol@dmarc.example",
			To: []string{"dave@gmail.test"}, ContentPath: orig,
			Upstream: upstream("550-5.7.26 Unauthenticated email from dmarc.example is not accepted due to domain's 550-5.7.26 DMARC policy. 550 5.7.26 x1 - gsmtp")})
	}
	for i, c := range []struct {
		client string
		want   bool
		later  time.Duration
	}{
		{"203.0.113.9", true, 0}, {"203.0.113.9", true, 0}, {"203.0.113.9", true, 0},
		{"203.0.113.9", false, 0}, {"203.0.113.9", false, 0},
		{"2001:db8:1:2::7", true, 0}, {"203.0.113.10", true, 0},
		{"203.0.113.9", true, 20 * time.Minute}, {"203.0.113.9", false, 0},
	} {
		now = now.Add(c.later)
		out := act(fmt.Sprintf("Q%d", i), c.client)
		if out.Encapsulated != c.want || !c.want && out.Heard.Code/100 == 2 {
			t.Errorf("refusal %d of %s: encapsulated %v, heard %q; want encapsulated %v", i, c.client, out.Encapsulated, out.Heard.String(), c.want)
		}
	}
}
