package policy

import (
	"errors"
	"fmt"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/envelope"
)

// keyLookup is a table looked up as Postfix's mail_addr_find does for
// relay_recipient_maps; *table.Table is one.
type keyLookup interface {
	LookupMailAddr(addr, delims string) (string, int, bool)
}

// listsRelayRecipients reports whether relay_recipient_maps is set and
// does not list every address (addresses in domains far apart): then only
// the addresses it lists are relayed to, whatever relay_domains holds.
func listsRelayRecipients(opts *Options) bool {
	maps, err := openRelayRecipients(opts.RelayRecipientMaps, opts.Tables)
	if err != nil || len(maps) == 0 {
		return false
	}
	for _, d := range everyDomain {
		listed := false
		for _, m := range maps {
			if _, _, ok := m.LookupMailAddr("victim@"+d, opts.RecipientDelimiter); ok {
				listed = true
			}
		}
		if !listed {
			return true
		}
	}
	return false
}

// openRelayRecipients opens relay_recipient_maps.
func openRelayRecipients(specs []string, tables Tables) ([]keyLookup, error) {
	var out []keyLookup
	var errs []error
	for _, spec := range specs {
		if tables == nil {
			return nil, errors.New("policy.relay_recipient_maps: lookup tables are not available")
		}
		m, err := tables.Open(spec)
		if err != nil {
			errs = append(errs, &KeyError{"policy.relay_recipient_maps", err})
			continue
		}
		k, ok := m.(keyLookup)
		if !ok {
			errs = append(errs, &KeyError{"policy.relay_recipient_maps", fmt.Errorf("%q cannot be looked up by key", spec)})
			continue
		}
		out = append(out, k)
	}
	return out, errors.Join(errs...)
}

// unlistedRelayRecipient is Postfix's smtpd_reject_unlisted_recipient for
// the relay address class: with relay_recipient_maps set, a recipient in
// relay_domains must be listed there ("user@domain", the address without
// its recipient_delimiter extension, or "@domain" for every user of a
// domain), or it is refused with Postfix's reply, so that the relay never
// accepts mail it would then bounce (backscatter).
//
// The class is the domain's, as trivial-rewrite resolves it: a routed
// address in a relay domain (user%other@relay.example, which a client
// allowed to relay may send) is in the class and is looked up as it is,
// so only "@domain" lists it; a trailing dot after the domain is not part
// of the key.
func (e *Engine) unlistedRelayRecipient(rcpt string) (Decision, bool) {
	if len(e.relayRecipients) == 0 || rcpt == "" {
		return Decision{}, false
	}
	if e.opts.Postmaster != "" && strings.EqualFold(rcpt, e.opts.Postmaster) {
		return Decision{}, false
	}
	a, err := envelope.Parse(rcpt)
	if err != nil || a.IsLiteral() || !e.named.Load().relay.has(a.Domain) {
		return Decision{}, false
	}
	// A trailing dot after the domain is not part of the key.
	addr := trimDot(rcpt)
	for _, m := range e.relayRecipients {
		if _, _, ok := m.LookupMailAddr(addr, e.opts.RecipientDelimiter); ok {
			return Decision{}, false
		}
	}
	return reject(550, "5.1.1", "<"+rcpt+">: Recipient address rejected: User unknown in relay recipient table", "relay_recipient_maps"), true
}
