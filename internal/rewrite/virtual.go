package rewrite

import (
	"errors"
	"net/mail"
	"slices"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// Virtual alias expansion, as Postfix's cleanup(8) applies virtual_alias_maps
// to every recipient (cleanup_map1n.c): a recipient the tables list is
// replaced by the addresses its entry gives ("ops@example.com
// alice@example.net, bob@example.org"), each of them looked up again; an
// address whose entry names itself is kept and goes no further; an
// "@domain" result keeps the local part. Postfix's limits apply:
// virtual_alias_recursion_limit (100 levels) and
// virtual_alias_expansion_limit (1000 addresses).
const (
	virtualRecursionLimit = 100
	virtualExpansionLimit = 1000
)

// HasVirtual reports whether virtual_alias_maps are set.
func (c *Canonical) HasVirtual() bool { return c != nil && len(c.virtual) > 0 }

// ErrVirtualLimit is an expansion past Postfix's limits: a loop in the
// tables, or an alias of too many addresses. Postfix does not accept such
// a message ("unreasonable virtual_alias_maps map nesting -- message not
// accepted"), and neither does the relay: sent on unexpanded, it would go
// upstream to an address that exists only as an alias.
var ErrVirtualLimit = errors.New("virtual_alias_maps: unreasonable expansion (a loop in the tables, or past 100 levels or 1000 addresses)")

// Expand returns the addresses recipient rcpt (as mapped) expands to, and
// whether the tables changed it at all; ErrVirtualLimit (logged) when the
// expansion goes past Postfix's limits. As in cleanup_map1n.c, each
// address is looked up again until it has no entry, an address whose
// entry names itself is kept once and not looked up again, and a loop
// (a -> b -> a) runs into the recursion limit.
func (c *Canonical) Expand(rcpt string) ([]string, bool, error) {
	if !c.HasVirtual() || rcpt == "" {
		return []string{rcpt}, false, nil
	}
	type item struct {
		addr  string
		depth int
	}
	var out []string
	kept := map[string]bool{} // addresses that named themselves
	queue := []item{{rcpt, 0}}
	changed := false
	for len(queue) > 0 {
		it := queue[0]
		queue = queue[1:]
		targets, ok, err := c.virtualTargets(it.addr)
		if err != nil {
			return nil, true, err
		}
		if !ok || kept[strings.ToLower(it.addr)] {
			out = append(out, it.addr)
			continue
		}
		if it.depth >= virtualRecursionLimit || len(out)+len(queue)+len(targets) > virtualExpansionLimit {
			if c.Log != nil {
				c.Log.Warn("virtual_alias_maps: unreasonable expansion (a loop in the tables?); message not accepted",
					"recipient", rcpt, "address", it.addr, "levels", it.depth, "addresses", len(out)+len(queue)+len(targets))
			}
			return nil, true, ErrVirtualLimit
		}
		changed = true
		for _, tgt := range targets {
			if strings.EqualFold(tgt, it.addr) {
				kept[strings.ToLower(tgt)] = true
				out = append(out, tgt) // names itself: delivered as it is
				continue
			}
			queue = append(queue, item{tgt, it.depth + 1})
		}
	}
	seen := map[string]bool{}
	return slices.DeleteFunc(out, func(a string) bool {
		k := strings.ToLower(a)
		dup := seen[k]
		seen[k] = true
		return dup
	}), changed, nil
}

// ErrVirtualValue is an entry that is no list of addresses, in a table
// changed while the relay runs (at start it is refused): sent on
// unexpanded, the mail would go upstream to an address that exists only
// as an alias, so it waits, as after ErrVirtualLimit, until the table is
// fixed.
var ErrVirtualValue = errors.New("virtual_alias_maps: an entry is no list of addresses")

// virtualTargets is the first table's entry for addr, as addresses.
func (c *Canonical) virtualTargets(addr string) ([]string, bool, error) {
	for _, t := range c.virtual {
		v, match, ok := t.LookupMailAddr(table.ResolvedForm(addr), c.Delims)
		if !ok {
			continue
		}
		local := addr
		if at := strings.LastIndexByte(addr, '@'); at >= 0 {
			local = addr[:at]
		}
		ext := ""
		if match == table.MatchBare {
			// Found without its extension: each address gets it
			// (propagate_unmatched_extensions includes virtual).
			ext = extension(local, c.Delims)
		}
		targets := virtualResult(v, local, ext)
		if len(targets) == 0 {
			if c.Log != nil {
				c.Log.Warn("virtual_alias_maps value has no address; message not accepted", "address", addr, "value", v)
			}
			return nil, false, ErrVirtualValue
		}
		return targets, true, nil
	}
	return nil, false, nil
}

// virtualResult reads a virtual(5) value: addresses separated by commas
// or blanks, each an address, which gets ext, or "@domain", which gets
// local (the recipient's local part, its extension included).
func virtualResult(v, local, ext string) []string {
	var parts []string
	if list, err := mail.ParseAddressList(v); err == nil {
		for _, a := range list {
			parts = append(parts, a.Address)
		}
	} else {
		parts = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	}
	var out []string
	for _, p := range parts {
		a, ok := result(p)
		if !ok {
			return nil // one bad address: the value is no list of addresses
		}
		switch at := strings.LastIndexByte(a, '@'); {
		case at == 0:
			a = local + a
		case ext != "":
			a = a[:at] + ext + a[at:]
		}
		out = append(out, a)
	}
	return out
}

// ValidVirtual reports a virtual_alias_maps value that is no list of
// addresses.
func ValidVirtual(v string) error {
	if len(virtualResult(v, "x", "")) == 0 && !strings.Contains(v, "$") {
		return &valueError{v}
	}
	return nil
}
