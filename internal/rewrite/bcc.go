package rewrite

import (
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// Automatic BCC, as Postfix's cleanup(8) adds it to mail that enters from
// outside (cleanup_addr.c): always_bcc to every message, sender_bcc_maps'
// address for the (mapped) envelope sender, recipient_bcc_maps' for each
// (mapped) recipient. One address per lookup ("multiple results are not
// supported", postconf(5)). Not for the null sender's sender lookup, nor
// for mail the relay makes itself (notices) or gets back from a content
// filter, where Postfix's no_address_mappings turns it off too.

// bcc is the automatic BCC settings.
type bcc struct {
	always            string
	sender, recipient []Table
}

func (b *bcc) enabled() bool {
	return b != nil && (b.always != "" || len(b.sender)+len(b.recipient) > 0)
}

// HasBCC reports whether automatic BCC is configured.
func (c *Canonical) HasBCC() bool { return c != nil && c.bcc.enabled() }

// BCC returns the addresses automatic BCC adds to a message from sender
// to rcpts (both as mapped), without those already among rcpts, each once.
// The relay adds them with NOTIFY=NEVER, as Postfix does, so that the
// sender never hears of them.
func (c *Canonical) BCC(sender string, rcpts []string) []string {
	if !c.HasBCC() {
		return nil
	}
	var out []string
	add := func(a string) {
		if a == "" || containsFold(rcpts, a) || containsFold(out, a) {
			return
		}
		out = append(out, a)
	}
	for _, r := range rcpts {
		add(c.bccFor(r, c.bcc.recipient))
	}
	if sender != "" {
		add(c.bccFor(sender, c.bcc.sender))
	}
	add(c.bcc.always)
	return out
}

// bccFor is the first table's address for addr, or "".
func (c *Canonical) bccFor(addr string, tables []Table) string {
	for _, t := range tables {
		v, _, ok := t.LookupMailAddr(table.ResolvedForm(addr), c.Delims)
		if !ok {
			continue
		}
		if a, ok := bccResult(v); ok {
			return a
		}
		if c.Log != nil {
			c.Log.Warn("BCC map value is not an address; nothing added", "address", addr, "value", v)
		}
		return ""
	}
	return ""
}

// bccResult is a BCC table's value as one full address.
func bccResult(v string) (string, bool) {
	a, ok := result(v)
	return a, ok && !strings.HasPrefix(a, "@")
}

// ValidBCC reports a BCC table value that is no address.
func ValidBCC(v string) error {
	if _, ok := bccResult(v); !ok && !strings.Contains(v, "$") {
		return &valueError{v}
	}
	return nil
}

type valueError struct{ v string }

func (e *valueError) Error() string { return "\"" + e.v + "\" is not an address" }

func containsFold(list []string, a string) bool {
	for _, x := range list {
		if strings.EqualFold(x, a) {
			return true
		}
	}
	return false
}
