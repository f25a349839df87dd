package smtpd

import "testing"

// TestBb10EmptyQuotedLocalPart: an empty quoted local part (<""@example.org>)
// is one that go-smtp's parser refuses ("local-part is empty", after it has
// taken the quotes off), so pathRefusal refuses it in Postfix's words. It
// let it through, and the client heard go-smtp's "501 5.5.2 Was expecting
// MAIL arg syntax of FROM:<address>".
func TestBb10EmptyQuotedLocalPart(t *testing.T) {
	for _, c := range []struct {
		rest string
		rcpt bool
		want string
	}{
		{`<""@example.org>`, false, "501 5.1.7 Bad sender address syntax"},
		{`""@example.org`, false, "501 5.1.7 Bad sender address syntax"},
		{`<""@example.net> NOTIFY=NEVER`, true, "501 5.1.3 Bad recipient address syntax"},
		{`<"x"@example.net>`, true, ""},
		{`<" "@example.net>`, true, ""},
	} {
		if got := pathRefusal(c.rest, c.rcpt); got != c.want {
			t.Errorf("pathRefusal(%q, rcpt %v) = %q; want %q", c.rest, c.rcpt, got, c.want)
		}
	}
}
