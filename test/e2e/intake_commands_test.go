package e2e

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// commandCase is a command line and the prefix of the reply it must get,
// sent after setup lines that must each get a 250; next, if set, is a
// following command, and then the prefix of its reply.
type commandCase struct {
	name       string
	setup      []string
	line       string
	want       string // prefix of the reply to line
	next, then string // a following command and the prefix of its reply
}

// runCommandCases runs each case in a session of its own to addr.
func runCommandCases(t *testing.T, addr string, cases []commandCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := mustDial(t, addr, "127.0.0.1")
			for _, s := range tc.setup {
				if rep, err := c.cmd("%s", s); err != nil || rep.code() != 250 {
					t.Fatalf("%.40q = %q, %v; want 250", s, rep, err)
				}
			}
			rep, err := c.cmd("%s", tc.line)
			if err != nil || !strings.HasPrefix(rep.String(), tc.want) {
				t.Errorf("%.60q (%d octets) = %q, %v; want %q", tc.line, len(tc.line)+2, rep, err, tc.want+"...")
			}
			if tc.next != "" {
				if rep, err := c.cmd("%s", tc.next); err != nil || !strings.HasPrefix(rep.String(), tc.then) {
					t.Errorf("then %q = %q, %v; want %q", tc.next, rep, err, tc.then+"...")
				}
			}
		})
	}
}

// TestIntakeCommandReplies: each bad command gets Postfix's reply, over raw
// TCP to the built binary, and nothing of a refused line is executed (the
// command after it shows the state it left).
func TestIntakeCommandReplies(t *testing.T) {
	t.Parallel()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	const ehlo, mail = "EHLO client.e2e.test", "MAIL FROM:<alice@example.org>"
	runCommandCases(t, r.addr(), []commandCase{
		{name: "MAIL before EHLO", line: mail, want: "503 5.5.1 "},
		{name: "RCPT before MAIL", setup: []string{ehlo}, line: "RCPT TO:<bob@example.net>", want: "503 5.5.1 "},
		{name: "DATA before MAIL", setup: []string{ehlo}, line: "DATA", want: "503 5.5.1 "},
		{name: "DATA before RCPT", setup: []string{ehlo, mail}, line: "DATA", want: "503 5.5.1 "},
		{name: "nested MAIL", setup: []string{ehlo, mail}, line: mail, want: "503 5.5.1 "},
		{name: "AUTH before EHLO", line: "AUTH PLAIN", want: "503 5.5.1 "},
		{name: "MAIL syntax", setup: []string{ehlo}, line: "MAIL alice@example.org", want: "501 5.5.4 "},
		{name: "RCPT syntax", setup: []string{ehlo, mail}, line: "RCPT bob@example.net", want: "501 5.5.4 "},
		{name: "DATA with an argument", setup: []string{ehlo, mail}, line: "DATA now", want: "501 5.5.4 "},
		{name: "NUL in MAIL", setup: []string{ehlo}, line: "MAIL FROM:<al\x00ice@example.org>", want: "500 5.5.2 ",
			next: "RCPT TO:<bob@example.net>", then: "503 5.5.1 "},
		{name: "bare CR in MAIL", setup: []string{ehlo}, line: "MAIL FROM:<alice@example.org>\rRSET", want: "500 5.5.2 ",
			next: "RCPT TO:<bob@example.net>", then: "503 5.5.1 "},
		{name: "bare CR in RCPT", setup: []string{ehlo, mail}, line: "RCPT TO:<bob@example.net>\r", want: "500 5.5.2 ",
			next: "DATA", then: "503 5.5.1 "},
		{name: "8-bit sender without SMTPUTF8", setup: []string{ehlo}, line: "MAIL FROM:<jörg@example.org>", want: "553 5.6.7 "},
		{name: "8-bit recipient without SMTPUTF8", setup: []string{ehlo, mail}, line: "RCPT TO:<jörg@example.net>", want: "553 5.6.7 "},
		{name: "8-bit sender with SMTPUTF8", setup: []string{ehlo}, line: "MAIL FROM:<jörg@example.org> SMTPUTF8", want: "250 ",
			next: "RCPT TO:<björn@example.net>", then: "250 "},
		{name: "command line of 512 octets", setup: []string{ehlo}, line: "NOOP " + strings.Repeat("x", 505), want: "250 "},
		{name: "command line of 513 octets", setup: []string{ehlo}, line: "NOOP " + strings.Repeat("x", 506), want: "500 5.5.2 "},
		{name: "EHLO of 1,100 octets", line: "EHLO " + strings.Repeat("a.", 547) + "a", want: "500 5.5.2 ",
			next: mail, then: "503 5.5.1 "},
		{name: "MAIL with parameters, 2,000 octets", setup: []string{ehlo}, line: mail + strings.Repeat(" ", 1973), want: "250 "},
		{name: "MAIL of 2,100 octets", setup: []string{ehlo}, line: mail + strings.Repeat(" ", 2073), want: "500 5.5.2 ",
			next: "RCPT TO:<bob@example.net>", then: "503 5.5.1 "},
		{name: "RCPT of 2,100 octets", setup: []string{ehlo, mail}, line: "RCPT TO:<bob@example.net>" + strings.Repeat(" ", 2073), want: "500 5.5.2 ",
			next: "DATA", then: "503 5.5.1 "},
		{name: "AUTH of 12,300 octets", setup: []string{ehlo}, line: "AUTH PLAIN " + strings.Repeat("QUFB", 3072), want: "500 5.5.2 "},
		{name: "EHLO without argument", line: "EHLO", want: "501 5.5.4 "},
		{name: "EHLO with a hyphen at a label's end", line: "EHLO bad-.example", want: "501 5.5.2 "},
		{name: "EHLO with an empty label", line: "EHLO a..example", want: "501 5.5.2 "},
		{name: "EHLO with a 64-octet label", line: "EHLO " + strings.Repeat("l", 64) + ".example", want: "501 5.5.2 "},
		{name: "EHLO of 259 octets", line: "EHLO " + strings.Repeat("abcdefg.", 32) + "com", want: "501 5.5.2 "},
		{name: "EHLO with two words", line: "EHLO client.e2e.test extra", want: "501 5.5.2 "},
		{name: "EHLO with a bad literal", line: "EHLO [300.1.1.1]", want: "501 5.5.2 "},
		{name: "EHLO with an IPv4 literal", line: "EHLO [127.0.0.1]", want: "250"},
		{name: "EHLO with an IPv6 literal", line: "EHLO [IPv6:2001:db8::1]", want: "250"},
		{name: "HELO with a 63-octet label", line: "HELO " + strings.Repeat("l", 63) + ".example", want: "250 "},
		{name: "unknown command", setup: []string{ehlo}, line: "XYZZY", want: "500 5.5.2 "},
		{name: "empty line", setup: []string{ehlo}, line: "", want: "500 5.5.2 "},
	})
}

// TestIntakeErrorLimits: after 20 refused commands (smtpd_hard_error_limit)
// the client hears 421 and the connection closes; 100 NOOPs are free
// (smtpd_junk_command_limit), each further one counts as an error.
func TestIntakeErrorLimits(t *testing.T) {
	t.Parallel()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	for _, tc := range []struct {
		name    string
		line    string
		n       int    // lines sent, pipelined
		answers string // the reply each gets
	}{
		{"unknown commands", "XYZZY", 20, "500 5.5.2 "},
		{"NOOPs", "NOOP", 120, "250 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustDial(t, r.addr(), "127.0.0.1")
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			// One more, which must not be answered.
			if _, err := io.WriteString(c.conn, strings.Repeat(tc.line+"\r\n", tc.n+1)); err != nil {
				t.Fatal(err)
			}
			for i := range tc.n {
				if rep, err := c.read(); err != nil || !strings.HasPrefix(rep.String(), tc.answers) {
					t.Fatalf("reply %d = %q, %v; want %q", i+1, rep, err, tc.answers+"...")
				}
			}
			if rep, err := c.read(); err != nil || !strings.HasPrefix(rep.String(), "421 4.7.0 ") {
				t.Fatalf("after %d: %q, %v; want 421 4.7.0", tc.n, rep, err)
			}
			if rep, err := c.read(); !errors.Is(err, io.EOF) {
				t.Errorf("after the 421: %q, %v; want the connection closed", rep, err)
			}
		})
	}
}
