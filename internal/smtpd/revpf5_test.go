package smtpd

import "testing"

// TestRevPF5PathRefusal: an address go-smtp's parser cannot read is refused
// in Postfix's words (501 5.1.7 / 5.1.3 "Bad ... address syntax"), and an
// unqualified one as Postfix's reject_non_fqdn_* refuses it, instead of
// go-smtp's "501 5.5.2 Was expecting MAIL arg syntax of FROM:<address>",
// which names a syntax the client had followed. What go-smtp reads is left
// to it.
func TestRevPF5PathRefusal(t *testing.T) {
	for _, c := range []struct {
		rest string
		rcpt bool
		want string
	}{
		{"<s@example.org>", false, ""},
		{"s@example.org", false, ""},
		{" <s@example.org> SIZE=10", false, ""},
		{"<>", false, ""},
		{"<> SIZE=10", false, ""},
		{`<"a b"@example.org>`, false, ""},
		{`<"a>b"@example.org>`, true, ""},
		{"<@a,@b:s@example.org>", false, ""},
		{"<s@[192.0.2.1]>", true, ""},
		{"<postmaster>", true, ""},
		{"<Postmaster> NOTIFY=NEVER", true, ""},
		{"postmaster", true, ""},
		{"<user>", false, "504 5.5.2 <user>: Sender address rejected: need fully-qualified address"},
		{"user", false, "504 5.5.2 <user>: Sender address rejected: need fully-qualified address"},
		{"<user> SIZE=10", false, "504 5.5.2 <user>: Sender address rejected: need fully-qualified address"},
		{"<user>", true, "504 5.5.2 <user>: Recipient address rejected: need fully-qualified address"},
		{`<"a b">`, true, `504 5.5.2 <"a b">: Recipient address rejected: need fully-qualified address`},
		{"<postmaster>", false, "504 5.5.2 <postmaster>: Sender address rejected: need fully-qualified address"},
		{"<user@>", false, "501 5.1.7 Bad sender address syntax"},
		{"<user@>", true, "501 5.1.3 Bad recipient address syntax"},
		{"<>", true, "501 5.1.3 Bad recipient address syntax"},
		{"<s@example.org", false, "501 5.1.7 Bad sender address syntax"},
		{"<s@exa mple.org>", true, "501 5.1.3 Bad recipient address syntax"},
		{"<<s@example.org>>", false, "501 5.1.7 Bad sender address syntax"},
		{"<@relay.example>", false, "501 5.1.7 Bad sender address syntax"},
		{"<@relay.example:>", true, "501 5.1.3 Bad recipient address syntax"},
		{`<"unterminated@example.org>`, false, "501 5.1.7 Bad sender address syntax"},
		{"<a(b)@example.org>", false, "501 5.1.7 Bad sender address syntax"},
		{"", false, "501 5.1.7 Bad sender address syntax"},
		{"<a\x01>", false, "504 5.5.2 <a?>: Sender address rejected: need fully-qualified address"},
	} {
		if got := pathRefusal(c.rest, c.rcpt); got != c.want {
			t.Errorf("pathRefusal(%q, rcpt %v) = %q; want %q", c.rest, c.rcpt, got, c.want)
		}
	}
}
