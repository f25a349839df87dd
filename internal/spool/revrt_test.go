package spool

import (
	"strings"
	"testing"
)

// TestRevRtEnvelopeAddr: an envelope's From and To values went into MAIL
// FROM:<...> and RCPT TO:<...> as they stood: a hand-edited or
// filter-edited "x@example.org> BODY=8BITMIME" became an ESMTP parameter
// (and the bounce went to that string), "<y@example.net>" became
// RCPT TO:<<y@example.net>>. One pair of brackets is taken off; spaces and
// brackets outside a quoted local part and control characters anywhere
// make the envelope unreadable.
func TestRevRtEnvelopeAddr(t *testing.T) {
	env := func(from, to string) string {
		return "X-MailRelay-Format: #2821.8\nX-MailRelay-Content: 7bit\nX-MailRelay-From: " + from +
			"\nX-MailRelay-ToCount: 1\nX-MailRelay-To-Remote: " + to + "\nX-MailRelay-End: 1\n"
	}
	for _, c := range []struct{ from, to, wantFrom, wantTo string }{
		{"x@example.org", "<y@example.net>", "x@example.org", "y@example.net"},
		{"<>", `"a b"@example.net`, "", `"a b"@example.net`},
		{"<x@example.org>", `"a\"<b>"@example.net`, "x@example.org", `"a\"<b>"@example.net`},
	} {
		e, err := Unmarshal(strings.NewReader(env(c.from, c.to)))
		if err != nil {
			t.Errorf("From %q To %q: %v", c.from, c.to, err)
			continue
		}
		if e.From != c.wantFrom || len(e.Recipients) != 1 || e.Recipients[0].Addr != c.wantTo {
			t.Errorf("From %q To %q: got %q %v; want %q %q", c.from, c.to, e.From, e.Recipients, c.wantFrom, c.wantTo)
		}
	}
	for _, c := range [][2]string{
		{"x@example.org> BODY=8BITMIME", "y@example.net"},
		{"x@example.org", "y@example.net> NOTIFY=NEVER"},
		{"x@example.org", "y@example.net\rRSET"},
		{"x@example.org", "<>"},
		{"x@exa mple.org", "y@example.net"},
	} {
		if _, err := Unmarshal(strings.NewReader(env(c[0], c[1]))); err == nil {
			t.Errorf("From %q To %q: read; want a ParseError", c[0], c[1])
		}
	}
}
