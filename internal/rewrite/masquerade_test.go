package rewrite

import (
	"slices"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestMasquerade: masquerade_domains as postconf(5) gives its examples,
// the exceptions, the default classes (not the envelope recipient), the
// order after the canonical maps, and the header's fields.
func TestMasquerade(t *testing.T) {
	set := &table.Set{}
	c, err := Open(set, Maps{Sender: []string{"inline:{ a@x.local=a@mail.example.com }"},
		Masquerade: Masquerade{Domains: []string{"foo.example.com", "example.com"}, Exceptions: []string{"root"}}}, "+")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ addr, want string }{
		{"user@any.thing.foo.example.com", "user@foo.example.com"},
		{"user@any.thing.else.example.com", "user@example.com"},
		{"user@foo.example.com", "user@foo.example.com"},
		{"user@example.com", "user@example.com"},
		{"user@Host.Example.COM.", "user@example.com"},
		{"user@example.org", "user@example.org"},
		{"user@notexample.com", "user@notexample.com"},
		{"root@host.example.com", "root@host.example.com"},
		{"Root@host.example.com", "Root@host.example.com"},
		{"a@x.local", "a@example.com"}, // mapped, then masqueraded
		{"", ""},
	} {
		if got := c.SenderAddr(tc.addr); got != tc.want {
			t.Errorf("SenderAddr(%q) = %q; want %q", tc.addr, got, tc.want)
		}
	}
	if got := c.RecipientAddr("user@host.example.com"); got != "user@host.example.com" {
		t.Errorf("RecipientAddr = %q; the envelope recipient is not masqueraded by default", got)
	}
	msg := "From: A <user@host.example.com>\r\nTo: bob@h.example.com, carol@example.org\r\nSubject: user@host.example.com\r\n\r\nuser@host.example.com\r\n"
	want := "From: A <user@example.com>\r\nTo: bob@example.com, carol@example.org\r\nSubject: user@host.example.com\r\n\r\nuser@host.example.com\r\n"
	if got := writeInSteps(t, c, msg, 7); got != want {
		t.Errorf("header:\n%q\nwant\n%q", got, want)
	}
	if got := c.TargetDomains(); !slices.Contains(got, "example.com") || !slices.Contains(got, "foo.example.com") {
		t.Errorf("TargetDomains = %v; want the masquerade domains among them", got)
	}

	excl, err := Open(set, Maps{Masquerade: Masquerade{Domains: []string{"!foo.example.com", "example.com"},
		Classes: []string{"envelope_recipient"}}}, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ addr, want string }{
		{"user@any.thing.foo.example.com", "user@any.thing.foo.example.com"},
		{"user@foo.example.com", "user@foo.example.com"},
		{"user@any.thing.else.example.com", "user@example.com"},
	} {
		if got := excl.RecipientAddr(tc.addr); got != tc.want {
			t.Errorf("with !foo.example.com: RecipientAddr(%q) = %q; want %q", tc.addr, got, tc.want)
		}
	}
	if got := excl.SenderAddr("user@h.example.com"); got != "user@h.example.com" {
		t.Errorf("classes envelope_recipient only: SenderAddr = %q; want it unchanged", got)
	}

	_, err = Open(set, Maps{Masquerade: Masquerade{Domains: []string{"$mydomain", ".example.com", "a@b"},
		Classes: []string{"envelope_senders"}}}, "")
	for _, want := range []string{`rewrite.masquerade_domains: "$mydomain"`, `rewrite.masquerade_domains: ".example.com" is not a domain`,
		`rewrite.masquerade_domains: "a@b" is not a domain`, `rewrite.masquerade_classes: "envelope_senders"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %v; want it to hold %q", err, want)
		}
	}
}
