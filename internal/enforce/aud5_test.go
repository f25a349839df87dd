package enforce

import (
	"bytes"
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestAud5BlockReportSaysWhy: a domain block that is not carried out is
// reported with the reason in the mail log's why (and so in the
// administrator's mail), as every other report is. Before the fix the why
// was "domain not blocked" whatever the cause: a never-blocked freemail
// domain, the relay's own, a public suffix, an untrusted upstream.
func TestAud5BlockReportSaysWhy(t *testing.T) {
	const reputation = "550 5.7.1 [192.0.2.9 12] Our system has detected that this message is likely suspicious due to the very low reputation of the sending domain. x1 - gsmtp"
	for _, c := range []struct{ from, host, want string }{
		{"a@gmail.com", "mx.google.com", "domain not blocked: the domain gmail.com is never blocked"},
		{"a@co.uk", "mx.google.com", "domain not blocked: the domain co.uk is a public suffix"},
		{"a@spam.example", "mx.impostor.test", "domain not blocked: upstream mx.impostor.test is not a trusted upstream"},
	} {
		var ml bytes.Buffer
		e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter(), NeverBlock: []string{"gmail.com"}},
			MailLog: maillog.New(&ml), SenderAccess: t.TempDir() + "/sender_access"}
		rf := Refusal{ID: "Q1", Client: netip.MustParseAddr("203.0.113.9"), From: c.from, To: []string{"c@gmail.test"},
			Upstream: upstream(reputation)}
		rf.Host = c.host
		e.Act(context.Background(), rf)
		e1, err := maillog.Parse(strings.TrimSuffix(ml.String(), "\n"))
		if err != nil || e1.Event != "report" || !strings.HasPrefix(e1.Get("why"), c.want) {
			t.Errorf("from %s via %s: mail log %q (%v); want one report line with why=%q...", c.from, c.host, ml.String(), err, c.want)
		}
	}
}

// TestAud5ReplyFilterPostfixMapName: the reply filter may be named as
// Postfix's smtp_reply_filter names it, with its table type
// (pcre:/etc/postfix/smtp_dsn_rw_filter.pcre), as relay-enforcer's manual
// writes it. Before the fix "pcre:FILE" was opened as a file of that name:
// "open pcre:/...: no such file or directory", and the relay did not start.
func TestAud5ReplyFilterPostfixMapName(t *testing.T) {
	const file = "testdata/smtp_dsn_rw_filter.pcre"
	for _, name := range []string{"pcre:" + file, "regexp:" + file} {
		f, err := LoadReplyFilter(name)
		if err != nil {
			t.Errorf("LoadReplyFilter(%q): %v", name, err)
			continue
		}
		const dmarc = "550 5.7.26 DMARC initiative. x1 - gsmtp"
		if s, ok := f.RewriteFor(dmarc, true); !ok || !strings.HasPrefix(s, "250 2.0.0 DMARC") {
			t.Errorf("%s: %q became %q (%v); want the seed's 250 2.0.0 DMARC ...-fmod_dmarc", name, dmarc, s, ok)
		}
	}
	if _, err := LoadReplyFilter("hash:" + file); err == nil {
		t.Errorf("a hash: reply filter was accepted; Postfix's smtp_reply_filter is a regexp or pcre table")
	}
}

// TestAud5BansDue: Due counts a ban in force, and one that takes effect
// within the ban delay (a ban just found by a refusal), not a ban written
// by hand to start in a year, nor an expired one.
func TestAud5BansDue(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	path := filepath.Join(t.TempDir(), "bans")
	text := "192.0.2.1 until=2027-01-01T00:00:00Z\n" +
		"192.0.2.2 until=2027-01-01T00:00:00Z from=2026-12-06T12:00:11Z\n" + // Add's rounding up
		"192.0.2.6 until=2027-01-01T00:00:00Z from=2026-12-06T12:00:12Z\n" +
		"192.0.2.3 until=2099-01-01T00:00:00Z from=2098-01-01T00:00:00Z\n" +
		"192.0.2.4 until=2026-12-06T11:00:00Z\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := OpenBans(path, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	b.Delay = 10 * time.Second
	for ip, want := range map[string]bool{"192.0.2.1": true, "192.0.2.2": true, "192.0.2.3": false, "192.0.2.4": false, "192.0.2.5": false, "192.0.2.6": false} {
		if _, got := b.Due(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Due(%s) = %v; want %v", ip, got, want)
		}
	}
}

// TestAud5EncapsulateReportSaysWhy: a refusal whose encapsulation is not
// carried out is reported with the reason, as a domain block not carried
// out is (TestAud5BlockReportSaysWhy). Before the fix the why was "not
// encapsulated" whatever the cause: the refused message is an encapsulated
// copy already, or its content is gone.
func TestAud5EncapsulateReportSaysWhy(t *testing.T) {
	const dmarc = "550 5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC policy. x1 - gsmtp"
	dir := t.TempDir()
	copyFile := filepath.Join(dir, "copy")
	if err := os.WriteFile(copyFile, []byte("From: postmaster@relay.example\r\nX-Relaykeeper-Encapsulated: 1\r\n\r\nbody\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sp := openSpool(t, dir)
	for _, c := range []struct{ content, want string }{
		{copyFile, "not encapsulated: the message is an encapsulated copy already"},
		{"", "not encapsulated: the message's content is not at hand"},
	} {
		var ml bytes.Buffer
		e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, Spool: sp,
			RelayAddress: "postmaster@relay.example", MailLog: maillog.New(&ml)}
		rf := Refusal{ID: "Q1", Client: netip.MustParseAddr("203.0.113.9"), From: "a@example.com", To: []string{"c@gmail.test"},
			Upstream: upstream(dmarc), ContentPath: c.content}
		e.Act(context.Background(), rf)
		e1, err := maillog.Parse(strings.TrimSuffix(ml.String(), "\n"))
		if err != nil || e1.Event != "report" || !strings.HasPrefix(e1.Get("why"), c.want) {
			t.Errorf("content %q: mail log %q (%v); want one report line with why=%q...", c.content, ml.String(), err, c.want)
		}
	}
}
