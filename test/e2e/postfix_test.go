package e2e

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestPostfixIntoRelay: swaks -> Postfix (relayhost = relaykeeper) ->
// relaykeeper --forward-on-disconnect -> smtp-sink. Postfix logs
// status=sent with relaykeeper's "queued as ID", and the sink gets that
// message.
func TestPostfixIntoRelay(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect",
		"--interface", "127.0.0.1", "--spool-dir", spool)
	pf := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(r.addr())})

	out, code := harness.Swaks(t, "--server", pf.Addr(), "--from", "alice@example.org", "--to", "bob@example.net",
		"--header", "Subject: via postfix")
	if code != 0 {
		t.Fatalf("swaks to Postfix: exit %d\n%s", code, out)
	}
	line := pf.WaitLog(t, "status=sent", 30*time.Second)
	m := regexp.MustCompile(`to=<bob@example.net>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:(\d+),.* status=sent \(250 2\.0\.0 OK: queued as ([0-9A-F]{16})\)`).FindStringSubmatch(line)
	if m == nil || m[1] != strings.TrimPrefix(r.addr(), "127.0.0.1:") {
		t.Fatalf("Postfix log line %q; want status=sent to bob via relaykeeper at %s with its \"queued as ID\"", line, r.addr())
	}
	id := m[2]
	sink.WaitCount(t, 1, 10*time.Second)
	msg := sink.Messages()[0]
	if got := receivedID(msg.Data); got != id || msg.From != "alice@example.org" || !slices.Equal(msg.To, []string{"bob@example.net"}) {
		t.Errorf("sink got id %q from %q to %q; want %s from alice@example.org to [bob@example.net]", got, msg.From, msg.To, id)
	}
	if !strings.Contains(msg.Data, "by postfix.relaykeeper.test (Postfix)") || !strings.Contains(msg.Data, "\nSubject: via postfix\n") {
		t.Errorf("sink message lacks Postfix's Received header or the Subject:\n%s", head(msg.Data))
	}
	r.waitEvent("delivery", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == id && e.Get("result") == "sent" })
	waitSpool(t, spool, 5*time.Second, "empty", func(f map[string][]string) bool { return len(f) == 0 })
	pf.WaitEmpty(t, 10*time.Second)
}

// TestRelayIntoPostfix: swaks -> relaykeeper --forward-on-disconnect ->
// Postfix (relayhost = smtp-sink) -> smtp-sink.
func TestRelayIntoPostfix(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	pf := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(sink.Addr())})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", pf.Addr(), "--forward-on-disconnect",
		"--interface", "127.0.0.1", "--spool-dir", spool)

	out, code := harness.Swaks(t, "--server", r.addr(), "--from", "alice@example.org", "--to", "bob@example.net",
		"--header", "Subject: into postfix")
	mm := swaksQueued.FindStringSubmatch(out)
	if code != 0 || mm == nil {
		t.Fatalf("swaks to relaykeeper: exit %d\n%s", code, out)
	}
	id := mm[1]
	d := r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == id })
	if d.Get("result") != "sent" || d.Get("relay") != pf.Addr() || !strings.HasPrefix(d.Get("reply"), "250 2.0.0 Ok: queued as ") {
		t.Errorf("delivery line: result=%s relay=%s reply=%q; want sent to %s with Postfix's \"250 2.0.0 Ok: queued as ...\"",
			d.Get("result"), d.Get("relay"), d.Get("reply"), pf.Addr())
	}
	pf.WaitLog(t, "status=sent", 30*time.Second)
	sink.WaitCount(t, 1, 10*time.Second)
	msg := sink.Messages()[0]
	if msg.From != "alice@example.org" || !slices.Equal(msg.To, []string{"bob@example.net"}) {
		t.Errorf("sink got from %q to %q; want alice@example.org to [bob@example.net]", msg.From, msg.To)
	}
	if !strings.HasPrefix(msg.Data, "Received: from ") || !strings.Contains(msg.Data, "(relaykeeper) with ESMTP id "+id) {
		t.Errorf("sink message lacks relaykeeper's Received header for %s:\n%s", id, head(msg.Data))
	}
	waitSpool(t, spool, 5*time.Second, "empty", func(f map[string][]string) bool { return len(f) == 0 })
}

// TestRelayIntoStrictPostfix: a batch forwarded over one session (one
// worker carries it), each
// message's MAIL, RCPT and DATA sent with the previous one's final dot,
// into a Postfix set up as strictly as the SMTP-smuggling advice has it
// (smtpd_forbid_unauth_pipelining, reject_unauth_pipelining for DATA,
// no bare newlines): Postfix takes every message and logs no pipelining
// complaint.
func TestRelayIntoStrictPostfix(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	pf := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(sink.Addr()),
		MainCF: []string{"smtpd_forbid_unauth_pipelining = yes", "smtpd_data_restrictions = reject_unauth_pipelining",
			"smtpd_forbid_bare_newline = yes"}})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", pf.Addr(), "--forward-on-disconnect",
		"--interface", "127.0.0.1", "--spool-dir", spool, "--config", writeConfig(t, "connections = 1\n"))
	const n = 8
	acked := 0
	sendSession(r.addr(), n, func(m int) (string, string) {
		return "alice@example.org", "Subject: batch " + strconv.Itoa(m) + "\r\n\r\nline\r\n.dot\r\n"
	}, func(string, string) { acked++ })
	if acked != n {
		t.Fatalf("relay acknowledged %d of %d messages", acked, n)
	}
	sink.WaitCount(t, n, 60*time.Second)
	waitSpool(t, spool, 10*time.Second, "empty", func(f map[string][]string) bool { return len(f) == 0 })
	log := pf.MailLog()
	for _, bad := range []string{"improper command pipelining", "pipelining", "reject:", "bare <LF>"} {
		if strings.Contains(log, bad) {
			t.Errorf("Postfix's log has %q:\n%s", bad, log)
		}
	}
	if c := strings.Count(log, "postfix/smtpd"); c == 0 {
		t.Errorf("Postfix's log has no smtpd lines:\n%s", log)
	}
	if conns := strings.Count(log, ": connect from "); conns != 1 {
		t.Errorf("Postfix saw %d connections; want the batch over 1", conns)
	}
}
