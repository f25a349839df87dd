package companion

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/postfixlog"
)

const (
	unsolicited = "550-5.7.1 [192.0.2.10 12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail, 550 5.7.1 this message has been blocked. %s - gsmtp"
	domainRep   = "550-5.7.1 [192.0.2.10 12] Our system has detected that this message is likely 550-5.7.1 suspicious due to the very low reputation of the sending domain. 550 5.7.1 %s - gsmtp"
	noPTR       = "550-5.7.25 [192.0.2.10] The IP address sending this message does not have a 550-5.7.25 PTR record setup. 550 5.7.25 %s - gsmtp"
)

// message is the log lines of one message to Gmail, refused with reply;
// client "" is local submission (pickup, no client= line).
func message(q, client, from, to, msgid, reply string) string {
	var b strings.Builder
	if client == "" {
		fmt.Fprintf(&b, "Nov 22 10:00:01 mx1 postfix/pickup[99]: %s: uid=1000 from=<%s>\n", q, from)
	} else {
		fmt.Fprintf(&b, "Nov 22 10:00:01 mx1 postfix/smtpd[100]: %s: client=host.example[%s]\n", q, client)
	}
	fmt.Fprintf(&b, "Nov 22 10:00:01 mx1 postfix/cleanup[101]: %s: message-id=<%s>\n", q, msgid)
	fmt.Fprintf(&b, "Nov 22 10:00:01 mx1 postfix/qmgr[102]: %s: from=<%s>, size=900, nrcpt=1 (queue active)\n", q, from)
	enh := strings.Fields(reply)[0][4:]
	fmt.Fprintf(&b, "Nov 22 10:00:03 mx1 postfix/smtp[105]: %s: to=<%s>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=2, delays=0/0/1/1, dsn=%s, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: %s (in reply to end of DATA command))\n", q, to, enh, reply)
	return b.String()
}

// TestCompanionWelcomelistDecides: the welcomelist alone says who is
// exempt (a loopback client it does not list is banned); local submission
// and welcomelisted clients are encapsulated; a forged SRS sender blocks
// the forwarder's domain, never the one written in it; an alert is given
// once per cause per hour.
func TestCompanionWelcomelistDecides(t *testing.T) {
	dir := t.TempDir()
	wl := filepath.Join(dir, "welcomelist")
	os.WriteFile(wl, []byte("198.51.100.9   # a partner's server; no loopback here\n"), 0o644)
	backup := filepath.Join(dir, "backup")
	os.WriteFile(backup, []byte("From a@x  Sun Nov 22 10:00:00 2026\nReceived: from host.example by mx1 (Postfix) with ESMTP id 4A0002ABC2\nMessage-ID: <p-1@x>\n\npartner\n\n"+
		"From b@x  Sun Nov 22 10:00:00 2026\nReceived: by mx1 (Postfix, from userid 1000)\n\tid 4A0003ABC3; Sun, 22 Nov 2026 10:00:01 +0000\nMessage-ID: <l-1@x>\n\nlocal\n\n"), 0o600)
	w, err := enforce.OpenWelcomelist(wl)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	c := New(Options{Test: true, Backup: backup, SenderAccess: filepath.Join(dir, "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
		enforce.Policy{Rules: enforce.DefaultRules(), Welcome: w}, &postfixlog.Tracker{Reinjection: postfixlog.ReinjectNever},
		nil, maillog.New(&out), nil)
	log := message("4A0001ABC1", "127.0.0.5", "a@spam.example", "u1@gmail.test", "s-1@x", fmt.Sprintf(unsolicited, "s1")) +
		message("4A0002ABC2", "198.51.100.9", "a@partner.example", "u2@gmail.test", "p-1@x", fmt.Sprintf(unsolicited, "s2")) +
		message("4A0003ABC3", "", "b@local.example", "u3@gmail.test", "l-1@x", fmt.Sprintf(unsolicited, "s3")) +
		message("4A0004ABC4", "203.0.113.4", "SRS0=abcd=XY=gmail.com=bob@attacker.example", "u4@gmail.test", "f-1@x", fmt.Sprintf(domainRep, "s4")) +
		message("4A0005ABC5", "203.0.113.5", "c@ok.example", "u5@gmail.test", "a-1@x", fmt.Sprintf(noPTR, "s5")) +
		message("4A0006ABC6", "203.0.113.6", "d@ok.example", "u6@gmail.test", "a-2@x", fmt.Sprintf(noPTR, "s6"))
	got := runLog(t, c, &out, log)
	want := []string{
		"would-ban 4A0001ABC1 127.0.0.5 ",
		"would-encapsulate 4A0002ABC2 198.51.100.9 the client is on the welcomelist",
		"would-encapsulate 4A0003ABC3  submitted locally",
		"would-block-domain 4A0004ABC4 203.0.113.4attacker.example ",
		"would-alert 4A0005ABC5 203.0.113.5 ",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("actions:\n%s\nwant:\n%s\nlog:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out.String())
	}
}

// runLog runs c over log and returns the action lines as "EVENT QUEUE
// CLIENT/DOMAIN WHY".
func runLog(t *testing.T, c *Companion, out *strings.Builder, log string) []string {
	t.Helper()
	for _, l := range strings.Split(log, "\n") {
		if err := c.Line(l); err != nil {
			t.Fatal(err)
		}
	}
	c.AtEOF(true)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if l == "" {
			continue
		}
		e, err := maillog.Parse(l)
		if err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		got = append(got, e.Event+" "+e.Get("queue")+" "+e.Get("client")+e.Get("domain")+" "+e.Get("why"))
	}
	return got
}

// TestCompanionUnknownClientNoBlock: a content filter without XFORWARD
// re-injected a message whose client= line the log does not hold (the
// enforcer started after it): the client is unknown, so whether it is on
// the welcomelist cannot be told, and Gmail's verdict on the sender's
// domain is reported, not carried out. The partner here is welcomelisted.
func TestCompanionUnknownClientNoBlock(t *testing.T) {
	dir := t.TempDir()
	wl := filepath.Join(dir, "welcomelist")
	os.WriteFile(wl, []byte("198.51.100.9\n"), 0o644)
	w, err := enforce.OpenWelcomelist(wl)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	c := New(Options{Test: true, SenderAccess: filepath.Join(dir, "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
		enforce.Policy{Rules: enforce.DefaultRules(), Welcome: w}, &postfixlog.Tracker{}, nil, maillog.New(&out), nil)
	// The copy's client= line (amavis re-injecting) comes before amavis's
	// line, which it writes once the copy is queued.
	copyLines := message("5B0001ABC1", "127.0.0.1", "a@partner.example", "u1@gmail.test", "p-1@x", fmt.Sprintf(domainRep, "s1"))
	first := strings.IndexByte(copyLines, '\n') + 1
	log := copyLines[:first] +
		"Nov 22 10:00:02 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, LOCAL [127.0.0.1]:46134 [198.51.100.9] <a@partner.example> -> <u1@gmail.test>, Queue-ID: 4A0001ABC1, Message-ID: <p-1@x>, mail_id: d, Hits: -0.1, size: 1234, queued_as: 5B0001ABC1, 812 ms\n" +
		copyLines[first:]
	got := runLog(t, c, &out, log)
	want := []string{"would-report 5B0001ABC1  the client is unknown"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("actions:\n%s\nwant:\n%s\nlog:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out.String())
	}
}

// TestCompanionLocalNeedsPickup: only a message that pickup logged is
// local submission (encapsulated). One whose first line is not in the log
// (the enforcer started after it, a line was lost, or the client= line
// was not understood) has an unknown client: its ban is reported, never
// turned into re-sending the spam as the relay. A null sender with neither
// line is Postfix's own notice.
func TestCompanionLocalNeedsPickup(t *testing.T) {
	dir := t.TempDir()
	backup := filepath.Join(dir, "backup")
	os.WriteFile(backup, []byte("From a@x  Sun Nov 22 10:00:00 2026\nReceived: by mx1 (Postfix) with ESMTP id 4A0001ABC1\nMessage-ID: <s-1@x>\n\nspam\n\n"+
		"From b@x  Sun Nov 22 10:00:00 2026\nReceived: by mx1 (Postfix, from userid 1000) id 4A0002ABC2\nMessage-ID: <l-1@x>\n\nlocal\n\n"+
		"From MAILER-DAEMON  Sun Nov 22 10:00:00 2026\nReceived: by mx1 (Postfix) id 4A0003ABC3\nMessage-ID: <n-1@x>\n\nnotice\n\n"), 0o600)
	var out strings.Builder
	c := New(Options{Test: true, Backup: backup, SenderAccess: filepath.Join(dir, "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
		enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{}, nil, maillog.New(&out), nil)
	noFirst := func(s string) string { return s[strings.IndexByte(s, '\n')+1:] }
	log := noFirst(message("4A0001ABC1", "203.0.113.4", "a@spam.example", "u1@gmail.test", "s-1@x", fmt.Sprintf(unsolicited, "s1"))) +
		message("4A0002ABC2", "", "b@local.example", "u2@gmail.test", "l-1@x", fmt.Sprintf(unsolicited, "s2")) +
		noFirst(message("4A0003ABC3", "", "", "u3@gmail.test", "n-1@x", fmt.Sprintf(unsolicited, "s3")))
	got := runLog(t, c, &out, log)
	want := []string{
		"would-report 4A0001ABC1  the client is unknown",
		"would-encapsulate 4A0002ABC2  submitted locally",
		"would-report 4A0003ABC3  the relay's own message (a notice): never acted on",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("actions:\n%s\nwant:\n%s\nlog:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out.String())
	}
}

// TestUnreadFormatWarned: a log whose Postfix lines are all in a format
// the enforcer does not read (here journald's JSON export) is said so,
// once, in the diagnostic log, rather than acted on silently never; a log
// with one line read says nothing.
func TestUnreadFormatWarned(t *testing.T) {
	unknown := `{"__REALTIME_TIMESTAMP":"1","SYSLOG_IDENTIFIER":"postfix/smtp","MESSAGE":"4C2B7985118: to=<a@gmail.com>, status=sent"}`
	read := "Nov 22 10:00:01 mx1 postfix/qmgr[900]: 4C2B7985118: from=<bob@example.com>, size=1234, nrcpt=1 (queue active)"
	for _, tc := range []struct {
		first string
		warn  int
	}{{"", 1}, {read, 0}} {
		var diag, out strings.Builder
		c := New(Options{Test: true, SenderAccess: filepath.Join(t.TempDir(), "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
			enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{Reinjection: postfixlog.ReinjectNever},
			nil, maillog.New(&out), slog.New(slog.NewTextHandler(&diag, nil)))
		if tc.first != "" {
			c.Line(tc.first)
		}
		for range 3 * unreadWarnAt {
			c.Line(unknown)
		}
		if n := strings.Count(diag.String(), "format is not one postfix-enforcer knows"); n != tc.warn {
			t.Errorf("first line %q: %d warnings; want %d:\n%s", tc.first, n, tc.warn, diag.String())
		}
	}
}
