package e2e

import (
	"testing"
)

// Differential tests (see rev-pf5_test.go) of relay_domains given as
// lookup tables, the way main.cf often names them.

// TestTbl21RelayDomainTables: relay_domains = TYPE:FILE, with values that
// are not OK, ".domain" keys, regexp and cidr tables, and a "!" pattern
// before a table, asked by a client outside mynetworks.
func TestTbl21RelayDomainTables(t *testing.T) {
	t.Parallel()
	files := map[string]string{
		"hash:DIR/rd": "relay.example REJECT\n.dot.example x\nUpper.Example OK\n",
		"DIR/rd.pcre": "/^re\\.example$/ 1\n/^sub\\.pat\\.example$/ 1\n",
		// A negated pattern, inside a block: alone, "!/^not/ 1" holds
		// nearly every domain, an open relay that the relay refuses to
		// start with (pol22).
		"DIR/rd.regexp": "if /\\.example$/\n!/^not/ 1\nendif\n",
	}
	rcpts := []string{"r@relay.example", "r@sub.relay.example", "r@dot.example", "r@sub.dot.example", "r@upper.example",
		"r@a.upper.example", "r@re.example", "r@sub.re.example", "r@pat.example", "r@sub.pat.example", "r@not.example",
		"r@other.example", "r@relay.example.", "r@excluded.relay.example"}
	dot := map[string]string{"RCPT TO:<r@sub.dot.example>": "250 2.1.5 Ok"}
	for _, tc := range []struct {
		name, pf, rk string
		intended     map[string]string
	}{
		{"hash", "hash:DIR/rd", `["hash:DIR/rd"]`, dot},
		{"negated name before hash", "!excluded.relay.example, hash:DIR/rd", `["!excluded.relay.example", "hash:DIR/rd"]`, dot},
		{"pcre", "pcre:DIR/rd.pcre", `["pcre:DIR/rd.pcre"]`, nil},
		{"regexp negated", "regexp:DIR/rd.regexp", `["regexp:DIR/rd.regexp"]`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pf5Run(t, pf5Scenario{
				name:  "relay_domains " + tc.name,
				files: files,
				mainCF: []string{"mynetworks = 127.0.0.1/32", "relay_domains = " + tc.pf,
					"smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination"},
				toml:      "[policy]\nmynetworks = [\"127.0.0.1/32\"]\nrelay_domains = " + tc.rk + "\n",
				dialogues: []pf5Dialogue{pf5Session("127.0.0.2", "client.example", pf5Tx("s@example.org", rcpts...))},
				// docs/postfix-migration.md (parent_domain_matches_subdomains):
				// a ".domain" key also matches the subdomains, which
				// Postfix's default never looks up.
				intended: tc.intended,
			})
		})
	}
}
