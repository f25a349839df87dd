package enforce

import (
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
