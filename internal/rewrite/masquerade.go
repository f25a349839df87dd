package rewrite

import (
	"fmt"
	"slices"
	"strings"
)

// Masquerade is Postfix's address masquerading (masquerade_domains,
// masquerade_exceptions, masquerade_classes), applied after the canonical
// maps as cleanup(8) applies it: user@host.example.com leaves as
// user@example.com.
type Masquerade struct {
	// Domains are masquerade_domains, in order: the first that the
	// address's domain equals or is a subdomain of decides. An address
	// of that domain itself stays; one of a subdomain gets the domain.
	// "!sub.example.com" keeps sub.example.com and its subdomains.
	Domains []string
	// Exceptions are masquerade_exceptions: local parts never
	// masqueraded ("root").
	Exceptions []string
	// Classes are masquerade_classes; Postfix's default, envelope_sender,
	// header_sender and header_recipient, when empty.
	Classes []string
}

// masqClasses are the classes Postfix knows, and its default.
var (
	masqClasses       = []string{"envelope_sender", "envelope_recipient", "header_sender", "header_recipient"}
	defaultMasqClasse = []string{"envelope_sender", "header_sender", "header_recipient"}
)

// check refuses what Postfix would not read the same way, each problem
// under its configuration key.
func (m *Masquerade) check() []error {
	var errs []error
	for _, d := range m.Domains {
		name := strings.TrimPrefix(d, "!")
		switch {
		case strings.Contains(name, "$"):
			errs = append(errs, &KeyError{"rewrite.masquerade_domains",
				fmt.Errorf("%q: write the domain itself ($mydomain and the like are Postfix's variables)", d)})
		case name == "" || strings.ContainsAny(name, "@ \t,") || strings.HasPrefix(name, "."):
			errs = append(errs, &KeyError{"rewrite.masquerade_domains", fmt.Errorf("%q is not a domain", d)})
		}
	}
	for _, c := range m.Classes {
		if !slices.Contains(masqClasses, c) {
			errs = append(errs, &KeyError{"rewrite.masquerade_classes",
				fmt.Errorf("%q; want envelope_sender, envelope_recipient, header_sender or header_recipient", c)})
		}
	}
	return errs
}

// enabled reports whether any address is masqueraded.
func (m *Masquerade) enabled() bool { return m != nil && len(m.Domains) > 0 }

// applies reports whether class is masqueraded.
func (m *Masquerade) applies(class string) bool {
	return slices.Contains(cmpOr(m.Classes, defaultMasqClasse), class)
}

func cmpOr(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

// addr masquerades one address of class, as Postfix's masquerade.c: the
// list is walked left to right and the first domain that matches stops
// it.
func (m *Masquerade) addr(addr, class string) string {
	if !m.enabled() || addr == "" || !m.applies(class) {
		return addr
	}
	at := strings.LastIndexByte(addr, '@')
	if at <= 0 {
		return addr
	}
	local, domain := addr[:at], strings.TrimSuffix(addr[at+1:], ".")
	if slices.ContainsFunc(m.Exceptions, func(e string) bool { return strings.EqualFold(e, local) }) {
		return addr
	}
	for _, d := range m.Domains {
		excluded := strings.HasPrefix(d, "!")
		d = strings.TrimPrefix(d, "!")
		switch {
		case strings.EqualFold(domain, d):
			return addr
		case len(domain) > len(d) && domain[len(domain)-len(d)-1] == '.' && strings.EqualFold(domain[len(domain)-len(d):], d):
			if excluded {
				return addr
			}
			return local + "@" + d
		}
	}
	return addr
}
