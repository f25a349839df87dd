package config

import (
	"net/mail"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/envelope"
)

// addresses checks the settings that name an address or a mail domain the
// relay writes into envelopes or matches against them, each at its line.
func (v *validator) addresses(c *Config) {
	// A double bounce's recipient goes into an envelope as it stands,
	// with the relay's domain added when it has no @: "postmaster" or
	// user@domain, never a header-style "Name <addr>".
	if r := c.Delivery.DoubleBounceRecipient; r != "" {
		q := r
		if !strings.Contains(q, "@") {
			q += "@example.org"
		}
		if _, err := envelope.Parse(q); err != nil || strings.ContainsAny(r, "<>") {
			v.bad("%q is not an address: want postmaster (the relay's domain is added) or user@domain", r)("delivery.double_bounce_recipient")
		}
	}
	en := &c.Enforce
	// The sender of encapsulated copies and reports: "Name <addr>" is addr.
	if a, err := mail.ParseAddress(en.RelayAddress); en.RelayAddress != "" && err != nil {
		v.bad("%q is not an address: want one such as postmaster@relay.example.org", en.RelayAddress)("enforce.relay_address")
	} else if err == nil {
		en.RelayAddress = a.Address
	}
	// A domain that is no domain ("gmail,com", "*.example") would never
	// match, and leave the domain it was meant for blockable.
	for _, d := range en.NeverBlock {
		if a, err := envelope.Parse("postmaster@" + strings.TrimPrefix(d, ".")); err != nil || a.IsLiteral() || strings.ContainsAny(d, "*@,") {
			v.bad("%q is not a domain (one a list item; a domain's subdomains are spared with it)", d)("enforce.never_block")
		}
	}
}
