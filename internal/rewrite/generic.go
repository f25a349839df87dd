package rewrite

import (
	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

// HasGeneric reports whether smtp_generic_maps are set.
func (c *Canonical) HasGeneric() bool { return c != nil && len(c.generic) > 0 }

// GenericAddr maps addr through smtp_generic_maps: Postfix's SMTP client
// applies them to every address of mail leaving the machine, typically a
// local address (root@host.localdomain) made one the internet accepts
// (alerts@example.com). One lookup, as smtp_map11.c does: a result is
// not looked up again. The null sender stays as it is.
func (c *Canonical) GenericAddr(addr string) string {
	if !c.HasGeneric() || addr == "" {
		return addr
	}
	r := table.ResolvedForm(addr)
	if out, ok := c.find(r, c.generic); ok && out != r {
		return out
	}
	return addr
}

// headerMap is the mapping a HeaderWriter applies to an address of a
// header field of class 's' or 'r': the canonical maps and masquerading
// when the client's header is rewritten (local_header_rewrite_clients),
// then the generic maps for every message.
func (h *HeaderWriter) headerMap(addr string, class byte) string {
	if !h.GenericOnly {
		addr = h.C.headerAddr(addr, class)
	}
	return h.C.GenericAddr(addr)
}

// Generic maps a stored message's envelope through smtp_generic_maps:
// the sender, and each recipient still to be delivered, after the
// virtual aliases and the automatic BCC, as Postfix's SMTP client maps
// what its queue hands it. A recipient mapped takes the address it had
// as ORCPT (unless it has one); two that map to one address go once.
func (c *Canonical) Generic(from string, rcpts []spool.Recipient) (string, []spool.Recipient) {
	if !c.HasGeneric() {
		return from, rcpts
	}
	out, _ := spool.ExpandRecipients(rcpts, func(a string) ([]string, bool, error) {
		g := c.GenericAddr(a)
		return []string{g}, g != a, nil
	})
	return c.GenericAddr(from), out
}
