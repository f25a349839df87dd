package route

import (
	"fmt"
	"os"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// find looks key up in each table in turn, as Postfix's maps_find does.
// Partial keys (everything but the whole address and "*") skip pattern
// tables: Postfix makes those lookups with DICT_FLAG_FIXED.
func find(maps []mapTable, key string, whole bool) (string, bool) {
	if key == "" {
		return "", false
	}
	for _, m := range maps {
		if !whole && m.pattern {
			continue
		}
		if v, ok := m.t.Lookup(key); ok {
			return v, true
		}
	}
	return "", false
}

// lookupTransport searches transport_maps in the order of transport(5) and
// trivial-rewrite's transport_lookup(): user+ext@domain, user@domain, the
// domain, each parent as ".parent", then "*".
func (r *Router) lookupTransport(addr, domain string) (string, bool) {
	if len(r.tmaps) == 0 {
		return "", false
	}
	if v, ok := find(r.tmaps, addr, true); ok {
		return v, true
	}
	if s := table.StripExtension(addr, r.delim); s != "" {
		if v, ok := find(r.tmaps, s, false); ok {
			return v, true
		}
	}
	if domain != "" {
		if v, ok := find(r.tmaps, domain, false); ok {
			return v, true
		}
		// An address literal has no parent domains.
		for rest := domain; !strings.HasPrefix(domain, "["); {
			i := strings.IndexByte(rest, '.')
			if i < 0 || i+1 >= len(rest) {
				break
			}
			rest = rest[i+1:]
			if v, ok := find(r.tmaps, "."+rest, false); ok {
				return v, true
			}
		}
	}
	return find(r.tmaps, "*", true)
}

// NullSenderKey is looked up in the sender-dependent maps for the null
// sender, as Postfix's empty_address_default_transport_maps_lookup_key and
// empty_address_relayhost_maps_lookup_key.
const NullSenderKey = "<>"

// lookupSender searches maps (sender_dependent_default_transport_maps or
// sender_dependent_relayhost_maps) in the order of Postfix's
// mail_addr_find(): user+ext@domain, user@domain, @domain. No domain of
// this relay is local, so the localpart alone is never tried.
func (r *Router) lookupSender(maps []mapTable, sender string) (string, bool) {
	if len(maps) == 0 {
		return "", false
	}
	if sender == "" {
		return find(maps, NullSenderKey, true)
	}
	if v, ok := find(maps, sender, true); ok {
		return v, true
	}
	if s := table.StripExtension(sender, r.delim); s != "" {
		if v, ok := find(maps, s, false); ok {
			return v, true
		}
	}
	if _, domain := splitAddr(sender); domain != "" {
		return find(maps, "@"+domain, false)
	}
	return "", false
}

// splitAddr splits an address at its last '@'; the domain loses a
// trailing dot and is lower-cased.
func splitAddr(addr string) (local, domain string) {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr, ""
	}
	return addr[:at], strings.ToLower(strings.TrimSuffix(addr[at+1:], "."))
}

// isPatternSpec reports whether spec names a regexp, pcre or cidr table.
func isPatternSpec(spec string) bool {
	s := strings.TrimSpace(spec)
	for strings.HasPrefix(s, "proxy:") {
		s = s[len("proxy:"):]
	}
	for _, p := range []string{"regexp:", "pcre:", "cidr:"} {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// staticEntry is one table result known before any lookup, and where it is.
type staticEntry struct {
	where string // FILE:LINE or the spec
	value string
}

// staticEntries returns the results of a table that can be checked in
// advance: every entry of a hash-like text file (the keys are read here,
// the values are asked of the table, so that both agree on the format),
// and the value of a static: table. Pattern and inline tables give none.
func staticEntries(t *table.Table) []staticEntry {
	spec := strings.TrimSpace(t.Spec())
	for strings.HasPrefix(spec, "proxy:") {
		spec = spec[len("proxy:"):]
	}
	if strings.HasPrefix(spec, "static:") {
		v, _ := t.Lookup("*")
		return []staticEntry{{where: t.Spec(), value: v}}
	}
	if t.Path() == "" || isPatternSpec(spec) {
		return nil
	}
	data, err := os.ReadFile(t.Path())
	if err != nil {
		return nil // the table was read a moment ago; Route copes.
	}
	var out []staticEntry
	seen := make(map[string]bool)
	for n, line := range strings.Split(string(data), "\n") {
		line = strings.TrimSuffix(line, "\r")
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue // blank, or continues the line before
		}
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		key := strings.ToLower(firstKey(line))
		if seen[key] {
			continue // postmap ignores a later duplicate
		}
		seen[key] = true
		if v, ok := t.Lookup(key); ok {
			out = append(out, staticEntry{where: fmt.Sprintf("%s:%d", t.Path(), n+1), value: v})
		}
	}
	return out
}

// firstKey returns a table line's key: up to the first whitespace outside
// double quotes, a backslash escaping the next character, as postmap(1).
func firstKey(line string) string {
	quoted := false
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && (c == ' ' || c == '\t' || c == '\v' || c == '\f'):
			return line[:i]
		}
	}
	return line
}
