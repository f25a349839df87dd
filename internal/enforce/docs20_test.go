package enforce

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestDocs20EnforceFileExamples: the ban file and sender_access lines
// docs/enforce.md shows are the ones the enforcer writes: a ban's reason
// and a block's comment are "RULE: REPLY" (the rule that matched, then the
// upstream's reply on one line). The page showed free text ("very low
// reputation (550 5.7.1 ...)"), which no relay writes, so a script
// reading the rule out of the ban list, as the page's example suggested
// it could not, found other text.
func TestDocs20EnforceFileExamples(t *testing.T) {
	page, err := os.ReadFile("../../docs/enforce.md")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bans, err := OpenBans(filepath.Join(dir, "bans"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var ml bytes.Buffer
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, MailLog: maillog.New(&ml),
		SenderAccess: filepath.Join(dir, "sender_access"), Bans: bans}
	for _, c := range []struct{ from, reply string }{
		{"bob@spam.example", "550-5.7.1 [192.0.2.25 12] Our system has detected that this message is\n550 5.7.1 likely unsolicited mail. a1si123 - gsmtp"},
		{"eve@spammer.example", "550-5.7.1 [192.0.2.25 30] Our system has detected that this message is likely suspicious due to the very low reputation of the sending domain. a1si123 - gsmtp"},
	} {
		rf := Refusal{ID: "Q1", Client: netip.MustParseAddr("203.0.113.9"), From: c.from, To: []string{"u1@gmail.com"},
			Upstream: upstream(c.reply)}
		rf.Host = "mx.google.com"
		e.Act(context.Background(), rf)
	}
	written := map[string]string{} // what -> the line the enforcer wrote
	for name, prefix := range map[string]string{"bans": "203.0.113.9 ", "sender_access": "# "} {
		data, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatalf("%s: %v; mail log:\n%s", name, err, ml.String())
		}
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, prefix) && !strings.HasPrefix(l, "# relaykeeper bans") && !strings.HasPrefix(l, "# Change") && !strings.HasPrefix(l, "# when") {
				written[name] = l
			}
		}
	}
	reason := regexp.MustCompile(`(?:reason="|relaykeeper: )(gmail-[a-z-]+): [245][0-9][0-9][- ]`)
	rules := map[string]bool{}
	for _, r := range DefaultRules().rules {
		rules[r.name] = true
	}
	for name, line := range written {
		if !reason.MatchString(line) {
			t.Errorf("the enforcer wrote %s line %q; the test expects RULE: REPLY", name, line)
		}
	}
	shown := map[string]string{
		"bans":          regexp.MustCompile(`(?m)^203\.0\.113\.9 until=.*$`).FindString(string(page)),
		"sender_access": regexp.MustCompile(`(?m)^# [0-9T:-]+Z relaykeeper: .*$`).FindString(string(page)),
	}
	for name, line := range shown {
		m := reason.FindStringSubmatch(line)
		if m == nil || !rules[m[1]] {
			t.Errorf("docs/enforce.md's %s example %q is not what the enforcer writes, e.g.\n%s", name, line, written[name])
		}
	}
}
