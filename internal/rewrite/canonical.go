// Package rewrite is Postfix's canonical(5) address mapping
// (canonical_maps, sender_canonical_maps, recipient_canonical_maps) and
// address masquerading (masquerade_domains), applied as the relay
// receives a message: to the envelope, and to the addresses in the
// message's header; automatic BCC (always_bcc and the BCC maps); virtual
// aliases; and smtp_generic_maps, applied last.
package rewrite

import (
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/envelope"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// Table is one lookup table as canonical(5) is looked up; *table.Table
// is one.
type Table interface {
	LookupMailAddr(addr, delims string) (value string, match int, ok bool)
}

// Canonical maps addresses as Postfix's cleanup(8) does. The zero value
// maps nothing. It is safe for concurrent use; tables reload underneath.
type Canonical struct {
	// Sender and Recipient are sender_canonical_maps and
	// recipient_canonical_maps; Common is canonical_maps, applied
	// after them to both.
	Sender, Recipient, Common []Table
	// Delims is recipient_delimiter: user+foo@domain is also found as
	// user@domain, and the extension goes onto the result
	// (propagate_unmatched_extensions includes canonical by default).
	Delims string
	// Log, if set, hears of a table value that is no address (one
	// written into a table reloaded after start), which maps nothing.
	Log *slog.Logger
	// Masq is address masquerading, applied after the tables.
	Masq *Masquerade
	// Classes say which addresses each kind of table maps (nil: all
	// that Postfix maps by default).
	Classes *Classes
	// bcc is automatic BCC (bcc.go).
	bcc *bcc
	// virtual are virtual_alias_maps (virtual.go).
	virtual []Table
	// generic are smtp_generic_maps (generic.go).
	generic []Table
}

// Enabled reports whether any table is set.
func (c *Canonical) Enabled() bool {
	return c != nil && (len(c.Sender)+len(c.Recipient)+len(c.Common) > 0 || c.Masq.enabled())
}

// SenderAddr maps a sender address (envelope or header); the null
// sender stays as it is.
func (c *Canonical) SenderAddr(addr string) string {
	return c.mapClass(addr, c.senderTables(), "envelope_sender")
}

// RecipientAddr maps an envelope recipient.
func (c *Canonical) RecipientAddr(addr string) string {
	return c.mapClass(addr, c.recipientTables(), "envelope_recipient")
}

// headerAddr maps an address of a header field of class 's' (sender) or
// 'r' (recipient).
func (c *Canonical) headerAddr(addr string, class byte) string {
	if class == 's' {
		return c.mapClass(addr, c.senderTables(), "header_sender")
	}
	return c.mapClass(addr, c.recipientTables(), "header_recipient")
}

func (c *Canonical) senderTables() []Table {
	if c == nil {
		return nil
	}
	return c.Sender
}

func (c *Canonical) recipientTables() []Table {
	if c == nil {
		return nil
	}
	return c.Recipient
}

// mapClass maps addr through first and canonical_maps, then masquerades
// it if its class is masqueraded; the null sender stays as it is.
func (c *Canonical) mapClass(addr string, first []Table, class string) string {
	if !c.Enabled() || addr == "" {
		return addr
	}
	if !c.Classes.first(class) {
		first = nil
	}
	out := c.mapAddr(addr, first, c.Classes.common(class))
	if m := c.Masq.addr(table.ResolvedForm(out), class); m != table.ResolvedForm(out) {
		return m
	}
	return out
}

// mapAddr maps addr through first, then canonical_maps if common. The address is
// looked up as trivial-rewrite(8) leaves it before cleanup maps it:
// without a source route ("@a,@b:user@c") or a trailing dot after the
// domain ("user@c."), so that neither way of writing it steps past the
// table. An address no table maps stays as the client wrote it.
func (c *Canonical) mapAddr(addr string, first []Table, common bool) string {
	r := table.ResolvedForm(addr)
	out := c.map11(r, first)
	if common {
		out = c.map11(out, c.Common)
	}
	if out != r {
		return out
	}
	return addr
}

// maxRecursion is Postfix's limit on mapping a result again
// (cleanup_map11.c).
const maxRecursion = 10

// map11 maps addr through tables until the result maps to itself, or
// maps no further, as Postfix's cleanup_map11_external.
func (c *Canonical) map11(addr string, tables []Table) string {
	if len(tables) == 0 {
		return addr
	}
	for range maxRecursion {
		next, ok := c.find(addr, tables)
		if !ok || strings.EqualFold(next, addr) {
			return addr
		}
		addr = next
	}
	return addr
}

// find is Postfix's mail_addr_map for one address: the first table with
// a result gives it. A result that starts with "@" keeps the address's
// local part ("@example.com": user@host.local becomes user@example.com);
// a result found without the extension gets it back. A result with
// several addresses (a comma) gives its first, as Postfix does for
// canonical maps.
func (c *Canonical) find(addr string, tables []Table) (string, bool) {
	for _, t := range tables {
		v, match, ok := t.LookupMailAddr(addr, c.Delims)
		if !ok {
			continue
		}
		raw := v
		v, ok = result(v)
		if !ok {
			if c.Log != nil {
				c.Log.Warn("canonical map value is not an address; not mapped", "address", addr, "value", raw)
			}
			continue
		}
		at := strings.LastIndexByte(addr, '@')
		local := addr
		if at >= 0 {
			local = addr[:at]
		}
		if strings.HasPrefix(v, "@") {
			v = local + v
		} else if match != table.MatchFull {
			if ext := extension(local, c.Delims); ext != "" && match == table.MatchBare {
				if vat := strings.LastIndexByte(v, '@'); vat >= 0 {
					v = v[:vat] + ext + v[vat:]
				} else {
					v += ext
				}
			}
		}
		return v, true
	}
	return "", false
}

// result is a table's value as the address it maps to, as Postfix's
// mail_addr_crunch reads it: the first of a list, without its display
// name or angle brackets ("Alerts <alerts@example.com>" is
// alerts@example.com), or an "@domain". A value that is no address maps
// nothing: it must never become an envelope address such as
// "<alerts@example.com>", which every server refuses.
func result(v string) (string, bool) {
	if list, err := mail.ParseAddressList(v); err == nil && len(list) > 0 {
		v = list[0].Address
	} else {
		v, _, _ = strings.Cut(v, ",")
		v = strings.TrimSpace(v)
	}
	probe := v
	if strings.HasPrefix(v, "@") {
		probe = "x" + v
	}
	if a, err := envelope.Parse(probe); err != nil || a.Routed || a.Domain == "" {
		return "", false
	}
	return v, true
}

// ValidResult reports a table value that result cannot read as an
// address, for the tables' check at start.
// A pattern table's result with a substitution ($1) is known only when
// it matches.
func ValidResult(v string) error {
	if _, ok := result(v); !ok && !strings.Contains(v, "$") {
		return fmt.Errorf("%q is not an address or @domain", v)
	}
	return nil
}

// extension is the local part's extension with its delimiter ("+foo"),
// as table.StripExtension cuts it.
func extension(local, delims string) string {
	bare := table.StripExtension(local+"@x", delims)
	if bare == "" {
		return ""
	}
	return local[len(bare)-len("@x"):]
}

// TargetDomains are the domains the tables map addresses into
// ("alerts@example.com", "@example.com": example.com), as the tables
// stand now (they are re-read when they change: ask again). A pattern
// table's result names its domain with the substitutions left out:
// "${1}@example.com" maps into example.com, "${1}@${2}.example.com" under
// it. The enforcer never blocks them: after mapping, a refusal names the
// relay owner's own domain, not the client's.
func (c *Canonical) TargetDomains() []string {
	if !c.Enabled() && !c.HasGeneric() {
		return nil
	}
	var out []string
	if c.Masq.enabled() {
		for _, d := range c.Masq.Domains {
			if !strings.HasPrefix(d, "!") && !slices.Contains(out, strings.ToLower(d)) {
				out = append(out, strings.ToLower(d))
			}
		}
	}
	for _, ts := range [][]Table{c.Sender, c.Recipient, c.Common, c.generic} {
		for _, t := range ts {
			w, ok := t.(interface{ Results(func(string)) })
			if !ok {
				continue
			}
			w.Results(func(v string) {
				if a, ok := result(v); ok { // as the mapping reads it
					v = a
				}
				v, _, _ = strings.Cut(v, ",")
				if at := strings.LastIndexByte(v, '@'); at >= 0 {
					if d := strings.ToLower(strings.Trim(strings.TrimSpace(v[at+1:]), ">.")); d != "" && !slices.Contains(out, d) {
						out = append(out, d)
					}
				}
			})
		}
	}
	return out
}
