package e2e

import "testing"

// TestRevPF5Myorigin: with myorigin set on both, an unqualified sender
// gets the same replies from relaykeeper as from Postfix: accepted
// without restrictions, refused at RCPT by reject_non_fqdn_sender (whose
// reply names the sender as given); an unqualified recipient differs,
// as docs/rewrite.md says (Postfix would deliver it locally).
func TestRevPF5Myorigin(t *testing.T) {
	t.Parallel()
	cmds := []string{"EHLO client.example", "MAIL FROM:<scanner>", "RCPT TO:<ops@example.org>", "RSET",
		"MAIL FROM:scanner SIZE=100", "RCPT TO:<ops@example.org>", "RSET",
		`MAIL FROM:<"scan ner">`, "RCPT TO:<quoted@example.org>", "RSET", "QUIT"}
	for _, tc := range []struct {
		name, mainCF, toml string
		intended           map[string]string
	}{
		{"no restriction", "smtpd_sender_restrictions =", "", nil},
		{"reject_non_fqdn_sender", "smtpd_sender_restrictions = reject_non_fqdn_sender",
			"sender_restrictions = [\"reject_non_fqdn_sender\"]\n",
			// docs/tables.md: a quoted local part keeps its quotes
			// in a refusal.
			map[string]string{"RCPT TO:<quoted@example.org>": `504 5.5.2 <"scan ner">: Sender address rejected: need fully-qualified address`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			pf5Run(t, pf5Scenario{
				name:      "myorigin, " + tc.name,
				mainCF:    []string{"mynetworks = 127.0.0.1/32", "myorigin = office.example", tc.mainCF},
				toml:      "[rewrite]\nmyorigin = \"office.example\"\n[policy]\nmynetworks = [\"127.0.0.1/32\"]\n" + tc.toml,
				dialogues: []pf5Dialogue{{from: "127.0.0.1", cmds: cmds}},
				intended:  tc.intended,
			})
		})
	}
}
