package e2e

// "Adding a sender blacklist to Postfix", done as a Postfix administrator
// moving to relaykeeper would do it: the same sender_access file, postmap
// run out of habit, then edits without postmap and without a restart.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestSeed20SenderBlacklistStaleIndex: with hash: the relay reads the text
// file, never the .db that postmap made, so an edit counts at once even
// when the index is stale; whole domains match their subdomains (Postfix's
// default parent_domain_matches_subdomains), a ".domain" key only the
// subdomains; and a table file that disappears leaves the old rules in
// force rather than opening the blacklist.
func TestSeed20SenderBlacklistStaleIndex(t *testing.T) {
	t.Parallel()
	postmap, err := exec.LookPath("postmap")
	if err != nil {
		harness.Missing(t, "postmap: %v", err)
	}
	dir := t.TempDir()
	// postmap needs a main.cf; an empty one in a directory of its own.
	conf := filepath.Join(dir, "pf")
	if err := os.Mkdir(conf, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, conf, "main.cf", "", 0o644)
	table := writeFile(t, dir, "sender_access", "spammer.example REJECT\nbad@example.org REJECT\n.subs.example REJECT\n", 0o644)
	if out, err := exec.Command(postmap, "-c", conf, "hash:"+table).CombinedOutput(); err != nil {
		t.Fatalf("postmap hash:%s: %v\n%s", table, err, out)
	}
	// docs/postfix-migration.md's advice for a blacklist entry meant for
	// the domain only (parent_domain_matches_subdomains without
	// smtpd_access_maps): an exact regexp rule.
	exact := writeFile(t, dir, "exact.regexp", "/@exact\\.example$/ REJECT\n", 0o644)
	r := startPolicyRelay(t, fmt.Sprintf("[policy]\nsender_restrictions = [\"check_sender_access hash:%s\", \"check_sender_access regexp:%s\"]\n", table, exact))
	rcpt := func(sender string) string {
		return tryMessage(t, r.addr(), "127.0.0.1", sender, "rcpt@example.net").rcpt.String()
	}
	denied := func(sender string) string {
		return "554 5.7.1 <" + sender + ">: Sender address rejected: Access denied"
	}
	for sender, want := range map[string]string{
		"x@spammer.example":      denied("x@spammer.example"),
		"x@mail.spammer.example": denied("x@mail.spammer.example"),
		"bad@example.org":        denied("bad@example.org"),
		"good@example.org":       "250 2.1.5 Ok",
		"x@subs.example":         "250 2.1.5 Ok",
		"x@a.subs.example":       denied("x@a.subs.example"),
		"x@exact.example":        denied("x@exact.example"),
		"x@sub.exact.example":    "250 2.1.5 Ok",
	} {
		if got := rcpt(sender); got != want {
			t.Errorf("MAIL FROM:<%s>: RCPT = %q; want %q", sender, got, want)
		}
	}

	// An edit without postmap: the .db is now stale, the text is what counts.
	writeFile(t, dir, "sender_access", "spammer.example REJECT\nbad@example.org REJECT\nnew.example REJECT no more\n", 0o644)
	want := "554 5.7.1 <x@new.example>: Sender address rejected: no more"
	var got string
	if !waitFor(8*time.Second, func() bool { got = rcpt("x@new.example"); return got == want }) {
		t.Fatalf("x@new.example 8s after an edit without postmap: %q; want %q", got, want)
	}

	// The file removed (an editor's rename gone wrong): the rules stay.
	if err := os.Remove(table); err != nil {
		t.Fatal(err)
	}
	time.Sleep(6 * time.Second) // past the 5 s change check
	if got := rcpt("x@new.example"); got != want {
		t.Errorf("x@new.example after sender_access was removed: %q; want the old rule, %q", got, want)
	}
}
