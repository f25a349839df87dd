package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevFltClientFilterTakesWithExit0: a --client-filter that moves or
// deletes the claimed message's files and exits 0 has taken the message, as
// docs/filters.md says of a server filter that does so. It used to log an
// ERROR ("cannot be read; left for the next run") and leave an envelope with
// no content in the queue (writing back the envelope the filter had deleted),
// listed as damaged for ever and quarantined at the next start.
func TestRevFltClientFilterTakesWithExit0(t *testing.T) {
	t.Parallel()
	for name, body := range map[string]string{
		"both":    `rm -f "$1" "$2"; exit 0`,
		"content": `rm -f "$1"; exit 0`,
		"moved":   `mv "$1" "$BOX/"; mv "$2" "$BOX/"; exit 0`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			box := t.TempDir()
			sink := harness.NewFakeSMTP(t, harness.Script{})
			take := script(t, "take", "BOX="+box+"\n"+body+"\n")
			spool := t.TempDir()
			r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--poll", "1", "--no-bounces",
				"--client-filter", take, "--interface", "127.0.0.1", "--spool-dir", spool)
			mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("taken"))
			if !waitFor(10*time.Second, func() bool { return strings.Contains(r.stderr(), "client filter took the message") }) {
				t.Fatalf("after 10s the log does not say the filter took the message:\n%s", tail(r.stderr()))
			}
			time.Sleep(1500 * time.Millisecond) // another poll
			entries, _ := os.ReadDir(spool)
			var left []string
			for _, e := range entries {
				if !strings.HasPrefix(e.Name(), ".") {
					left = append(left, e.Name())
				}
			}
			if len(left) != 0 {
				t.Errorf("the spool still holds %v; want nothing: the filter took the message", left)
			}
			if strings.Contains(r.stderr(), "cannot be read") {
				t.Errorf("the log has an error for a message the filter took:\n%s", r.stderr())
			}
			if n := len(sink.Transactions()); n != 0 {
				t.Errorf("the smarthost saw %d transactions; want none", n)
			}
			if name == "moved" {
				if m, _ := filepath.Glob(filepath.Join(box, "*.content")); len(m) != 1 {
					t.Errorf("the filter's box holds %v; want the content it moved there", m)
				}
			}
		})
	}
}

// TestRevFltClientFilterBreaksEnvelope: a --client-filter that passes the
// message but leaves an envelope that does not parse has failed, as a
// server filter that does so (docs/filters.md): the message is deferred
// with a 451 4.3.0 and its envelope as it was, and retried with the queue's
// backoff. It used to log an ERROR and claim the message again at every
// poll, never counting an attempt, so that it was neither retried with a
// backoff nor ever bounced.
func TestRevFltClientFilterBreaksEnvelope(t *testing.T) {
	t.Parallel()
	runs := filepath.Join(t.TempDir(), "runs")
	sink := harness.NewFakeSMTP(t, harness.Script{})
	broken := script(t, "broken", `echo run >> `+runs+`; echo garbage > "$2"; exit 0`+"\n")
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--poll", "1", "--no-bounces",
		"--client-filter", broken, "--interface", "127.0.0.1", "--spool-dir", spool)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("broken envelope"))
	e := r.waitEvent("delivery", 10*time.Second, nil)
	if e.Get("result") != "deferred" || !strings.HasPrefix(e.Get("reply"), "451 4.3.0") {
		t.Errorf("delivery line = %v; want deferred with 451 4.3.0", e.Fields)
	}
	time.Sleep(3 * time.Second) // three polls
	if b, _ := os.ReadFile(runs); strings.Count(string(b), "run") != 1 {
		t.Errorf("the filter ran %d times in 3 s of 1 s polls; want once (the retry waits for the backoff)", strings.Count(string(b), "run"))
	}
	if strings.Contains(r.stderr(), "level=ERROR") {
		t.Errorf("the log has an error:\n%s", r.stderr())
	}
	out, _, _ := opsCmd(t, "", "queue", "list", "--spool-dir", spool)
	if !strings.Contains(out, "bob@example.net") || !strings.Contains(out, "1 attempt") || strings.Contains(out, "damaged") {
		t.Errorf("queue list:\n%s\nwant the message ready, with its recipient and 1 attempt", out)
	}
	if n := len(sink.Transactions()); n != 0 {
		t.Errorf("the smarthost saw %d transactions; want none", n)
	}
}

// TestRevFltHeaderChecksRedirectBCC: header_checks REDIRECT sends the
// message to its address instead of the recipients, and BCC adds one, as
// docs/header-checks.md (and Postfix) say. Both were recorded and never
// applied: a REDIRECT meant to divert mail (to a quarantine mailbox, say)
// delivered it to the original recipients.
func TestRevFltHeaderChecksRedirectBCC(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	cfg := checksConfig(t, "/^Subject: divert/ REDIRECT quarantine@example.com\n/^Subject: copy/ BCC archive@example.com\n")
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--no-bounces",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net", "carol@example.net"}, message("divert"))
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("copy"))
	sink.WaitTransactions(t, 2, 20*time.Second)
	time.Sleep(500 * time.Millisecond)
	got := map[string][]string{}
	for _, tx := range sink.Transactions() {
		subject := "divert"
		if strings.Contains(string(tx.Data), "Subject: copy") {
			subject = "copy"
		}
		for _, rc := range tx.Rcpts {
			got[subject] = append(got[subject], rc.Addr)
		}
	}
	want := map[string][]string{"divert": {"quarantine@example.com"}, "copy": {"bob@example.net", "archive@example.com"}}
	for k, w := range want {
		g := got[k]
		slices.Sort(g)
		slices.Sort(w)
		if !slices.Equal(g, w) {
			t.Errorf("message %q went to %v; want %v", k, g, w)
		}
	}
}

// TestRevFltDiscardSkipsFilters: a message header_checks DISCARDs is thrown
// away before the --filter chain runs, as a REJECTed one is: the filters
// used to get it all the same, so that copy: put a discarded message into
// every --pop-by-name mailbox (and a filter that archives or forwards mail
// acted on it), while the client heard 250 and the log said "discard".
func TestRevFltDiscardSkipsFilters(t *testing.T) {
	t.Parallel()
	cfg := checksConfig(t, "/^Subject: junk/ DISCARD junk\n")
	spool := t.TempDir()
	os.Mkdir(filepath.Join(spool, "alice"), 0o750)
	r := startRelay(t, "127.0.0.1", "--as-server", "--filter", "copy:", "--config", cfg,
		"--interface", "127.0.0.1", "--spool-dir", spool)
	mustSend(t, r.addr(), "carol@example.org", []string{"team@example.net"}, message("junk"))
	mustSend(t, r.addr(), "carol@example.org", []string{"team@example.net"}, message("news"))
	if got := len(messageIDs(t, filepath.Join(spool, "alice"))); got != 1 {
		t.Errorf("alice's mailbox holds %d messages; want only the one not discarded", got)
	}
	if got := len(messageIDs(t, spool)); got != 0 {
		t.Errorf("the main spool holds %d messages; want none", got)
	}
}

// TestRevFltDiscardProxy: in proxy mode a message header_checks DISCARDs
// is not sent upstream (it used to be: the proxy path came before the
// discard), and the next message of the same session goes through.
func TestRevFltDiscardProxy(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	cfg := checksConfig(t, "/^Subject: junk/ DISCARD junk\n")
	r := startRelay(t, "127.0.0.1", "--as-proxy", sink.Addr(), "--config", cfg,
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	for _, subject := range []string{"junk", "news"} {
		mustCmd(t, c, "250", "MAIL FROM:<carol@example.org>")
		mustCmd(t, c, "250", "RCPT TO:<team@example.net>")
		mustCmd(t, c, "354", "DATA")
		mustCmd(t, c, "250", "%s.", strings.ReplaceAll(message(subject), "\n", "\r\n"))
	}
	mustCmd(t, c, "221", "QUIT")
	sink.WaitTransactions(t, 1, 10*time.Second)
	time.Sleep(300 * time.Millisecond)
	var got []string
	for _, tx := range sink.Transactions() {
		if tx.Reply != "" && strings.HasPrefix(tx.Reply, "250") {
			got = append(got, string(tx.Data))
		}
	}
	if len(got) != 1 || strings.Contains(got[0], "Subject: junk") {
		t.Errorf("the upstream accepted %q; want the one message not discarded", got)
	}
}

// checksConfig writes a pcre: header_checks table of rules and a
// configuration that uses it, and returns the configuration's path.
func checksConfig(t *testing.T, rules string) string {
	t.Helper()
	checks := filepath.Join(t.TempDir(), "header_checks")
	if err := os.WriteFile(checks, []byte(rules), 0o644); err != nil {
		t.Fatal(err)
	}
	return writeConfig(t, "[policy]\nheader_checks = \"pcre:"+checks+"\"\n")
}
