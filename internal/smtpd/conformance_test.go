package smtpd

import (
	"strings"
	"testing"
	"time"
)

// TestReplyWording: the replies go-smtp words its own way are Postfix's.
// The first line of the EHLO reply and the HELO reply is the server's name
// (RFC 5321 section 4.1.1.1), MAIL and RCPT say 2.1.0 and 2.1.5 (RFC 3463),
// and a silent client hears the timeout docs/limits.md gives.
func TestReplyWording(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.IdleTimeout = time.Second })
	s := rawDial(t, ts.addr)
	if r := s.cmd("EHLO client.test"); !strings.HasPrefix(r, "250-relay.test|") {
		t.Errorf("EHLO: %q; want the first line 250-relay.test", r)
	}
	if r := s.cmd("HELO client.test"); r != "250 relay.test" {
		t.Errorf("HELO: %q; want 250 relay.test", r)
	}
	if r := s.cmd("MAIL FROM:<a@example.com>"); r != "250 2.1.0 Ok" {
		t.Errorf("MAIL: %q; want 250 2.1.0 Ok", r)
	}
	if r := s.cmd("RCPT TO:<b@example.net>"); r != "250 2.1.5 Ok" {
		t.Errorf("RCPT: %q; want 250 2.1.5 Ok", r)
	}
	if r := s.reply(); r != "421 4.4.2 relay.test Error: timeout exceeded" {
		t.Errorf("after a second of silence: %q; want 421 4.4.2 relay.test Error: timeout exceeded", r)
	}
}

// TestRecipientOvershoot: recipients past the limit hear 452 4.5.3 and do
// not count as errors (Postfix's smtpd_recipient_overshoot_limit), so the
// transaction goes on with those accepted (RFC 5321 section 4.5.3.1.8),
// even when the client pipelines far more than the error limit of them.
func TestRecipientOvershoot(t *testing.T) {
	ts := startServer(t, nil) // MaxRecipients 10, hard error limit 20
	s := rawDial(t, ts.addr)
	s.cmd("EHLO client.test")
	var b strings.Builder
	b.WriteString("MAIL FROM:<a@example.com>\r\n")
	for i := range 40 {
		b.WriteString("RCPT TO:<u" + string(rune('a'+i%26)) + string(rune('a'+i/26)) + "@example.net>\r\n")
	}
	b.WriteString("DATA\r\n")
	s.send(b.String())
	if r := s.reply(); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("MAIL: %q", r)
	}
	for i := range 40 {
		r := s.reply()
		want := "250 "
		if i >= 10 {
			want = "452 4.5.3 "
		}
		if !strings.HasPrefix(r, want) {
			t.Fatalf("RCPT %d: %q; want %q", i+1, r, want)
		}
	}
	if r := s.reply(); !strings.HasPrefix(r, "354 ") {
		t.Fatalf("DATA after 30 recipients past the limit: %q; want 354", r)
	}
	s.send("Subject: overshoot\r\n\r\nbody\r\n.\r\n")
	if r := s.reply(); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("final dot: %q", r)
	}
	if msgs := spooled(t, ts.spool); len(msgs) != 1 {
		t.Fatalf("spooled %d messages; want 1", len(msgs))
	}
}

// TestQuotedSender: a quoted local part is as good in MAIL FROM as in
// RCPT TO (RFC 5321 section 4.1.2), and it is kept quoted.
func TestQuotedSender(t *testing.T) {
	ts := startServer(t, nil)
	s := rawDial(t, ts.addr)
	s.cmd("EHLO client.test")
	for _, c := range []string{`MAIL FROM:<"a b"@example.com>`, "RCPT TO:<b@example.net>", "DATA"} {
		if r := s.cmd(c); r[0] != '2' && r[0] != '3' {
			t.Fatalf("%s: %q", c, r)
		}
	}
	s.send("Subject: quoted\r\n\r\nbody\r\n.\r\n")
	if r := s.reply(); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("final dot: %q", r)
	}
	ents, err := ts.spool.List()
	if err != nil || len(ents) != 1 {
		t.Fatalf("spool: %v, %v", ents, err)
	}
	env, _, err := ts.spool.Read(ents[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if env.From != `"a b"@example.com` {
		t.Errorf("spooled sender %q; want %q", env.From, `"a b"@example.com`)
	}
}

// TestTrailingSpace: a command with trailing white space is the command
// (Postfix), not a mangled one.
func TestTrailingSpace(t *testing.T) {
	ts := startServer(t, nil)
	s := rawDial(t, ts.addr)
	if r := s.cmd("EHLO client.test "); !strings.HasPrefix(r, "250-") {
		t.Fatalf("EHLO: %q", r)
	}
	if r := s.cmd("NOOP\t"); !strings.HasPrefix(r, "250 ") {
		t.Errorf("NOOP with a tab: %q", r)
	}
	if r := s.cmd("QUIT "); !strings.HasPrefix(r, "221 ") {
		t.Errorf("QUIT with a space: %q; want 221", r)
	}
}
