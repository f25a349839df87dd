package policy

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// NetworkRule is one entry of mynetworks: a network, or a lookup table
// whose results are networks; Not is Postfix's "!pattern", which excludes
// what it matches.
type NetworkRule struct {
	Prefix netip.Prefix
	Table  *table.Table
	Not    bool
}

// matches reports whether the rule's network or table holds ip. A table
// that holds every address (holdsEveryone) holds no one unless negated:
// refused at start, it may become one when its file changes and is
// reloaded, and must not make an open relay then.
func (r NetworkRule) matches(ip netip.Addr) bool {
	if r.Table != nil {
		_, ok := r.Table.Lookup(ip.String())
		return ok && (r.Not || !holdsEveryone(r.Table))
	}
	return r.Prefix.Contains(ip)
}

// ParseNetworks reads mynetworks as Postfix does: networks and bare
// addresses ("192.0.2.0/24", "[2001:db8::]/32"), files of them named by an
// absolute path ("/etc/postfix/network_table", Postfix's /file/name form,
// with # comments), and lookup tables ("cidr:/etc/postfix/mynetworks.cidr"),
// opened in tables so that they reload with the others; any of them after
// a "!", which excludes what it holds ("!!" undoes it). As in Postfix's
// match lists, a file's lines hold patterns of every kind, "!" ones and
// other files too, and a setting's item may hold several, separated by
// commas or spaces, each negated on its own. The rules are in the
// setting's order: the first that holds a client decides (Postfix's match
// list), and a client is in mynetworks if that one is not negated. Every
// problem is reported, each with where it is.
func ParseNetworks(entries []string, tables *table.Set) ([]NetworkRule, error) {
	return parseNetworks(entries, tables, nil)
}

// parseNetworks is ParseNetworks that records in seen, if not nil, each
// file it reads as it was before reading it.
func parseNetworks(entries []string, tables *table.Set, seen fileVersions) ([]NetworkRule, error) {
	p := networkParser{tables: tables}
	for _, e := range entries {
		readMatchList(&p, seen, "", e, false, nil)
	}
	return p.rules, errors.Join(p.errs...)
}

// networkParser collects the rules and problems of ParseNetworks.
type networkParser struct {
	tables *table.Set
	rules  []NetworkRule
	errs   []error
}

// fail records a problem found at where ("FILE:LINE"), or with where "",
// in the setting itself.
func (p *networkParser) fail(where string, err error) {
	if where == "" {
		p.errs = append(p.errs, &KeyError{"policy.mynetworks", err})
		return
	}
	p.errs = append(p.errs, fmt.Errorf("%s: %w", where, err))
}

func (p *networkParser) table(where, spec string, not bool) {
	t, err := p.tables.Open(spec)
	if err != nil {
		p.fail(where, err)
		return
	}
	if !not && holdsEveryone(t) {
		p.fail(where, fmt.Errorf("%s holds every address on the Internet (0.0.0.0/0 or the like): an open relay; list the networks you trust", spec))
		return
	}
	p.rules = append(p.rules, NetworkRule{Table: t, Not: not})
}

// everyone are addresses in far-apart networks, none private, that no
// list of trusted networks holds all of unless it holds the whole
// Internet (0.0.0.0/0 in a cidr: table, /./ in a pcre: one). A table is
// checked as it is read at start and on SIGHUP.
var everyone = [][]string{
	{"3.0.0.1", "61.0.0.1", "99.0.0.1", "130.0.0.1", "177.0.0.1", "213.0.0.1"},
	{"2600::1", "2a00::1", "2c0f::1", "2400::1"},
}

// holdsEveryone reports whether t holds every address of one family's
// probes.
func holdsEveryone(t *table.Table) bool {
	for _, fam := range everyone {
		all := true
		for _, a := range fam {
			if _, ok := t.Lookup(a); !ok {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (p *networkParser) pattern(where, s string, not bool) {
	// Postfix writes IPv6 networks "[2001:db8::]/32".
	bare := strings.NewReplacer("[", "", "]", "").Replace(s)
	if pr, err := netip.ParsePrefix(bare); err == nil && pr.Bits() == 0 && !not {
		// Postfix takes it; a relay that lets outside clients in
		// (--remote-clients) is then open to anyone for anywhere.
		p.fail(where, fmt.Errorf("%q trusts every client on the Internet to relay anywhere (an open relay): list the networks you trust", s))
	} else if err == nil {
		p.rules = append(p.rules, NetworkRule{Prefix: pr.Masked(), Not: not})
	} else if a, err := netip.ParseAddr(bare); err == nil {
		p.rules = append(p.rules, NetworkRule{Prefix: netip.PrefixFrom(a, a.BitLen()), Not: not})
	} else {
		p.fail(where, fmt.Errorf("%q is not a network", s))
	}
}

// KeyError is a problem with the setting Key ("policy.mynetworks").
type KeyError struct {
	Key string
	Err error
}

func (e *KeyError) Error() string { return e.Key + ": " + e.Err.Error() }

func (e *KeyError) Unwrap() error { return e.Err }

// ConfigKey is the configuration key, so that the error can be placed at
// its line.
func (e *KeyError) ConfigKey() string { return e.Key }

// isTableSpec reports a "type:name" table rather than an IPv6 network.
func isTableSpec(s string) bool {
	typ, _, ok := strings.Cut(s, ":")
	if !ok || typ == "" {
		return false
	}
	for _, c := range typ {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	// "2001:db8::/32" and "::1" are networks, not tables.
	bare := strings.NewReplacer("[", "", "]", "").Replace(s)
	if _, err := netip.ParsePrefix(bare); err == nil {
		return false
	}
	if _, err := netip.ParseAddr(bare); err == nil {
		return false
	}
	return true
}

// TrustedWithin reports whether p holds a trusted network or address that
// the engine can list (mynetworks' networks and files; not a lookup
// table's keys, nor a CIDR table's): a ban of p would cover a trusted
// client (enforce.Spared).
func (e *Engine) TrustedWithin(p netip.Prefix) bool {
	if e == nil {
		return false
	}
	for _, r := range e.named.Load().nets {
		if r.Table == nil && !r.Not && r.Prefix.IsValid() && r.Prefix.Overlaps(p) {
			return true
		}
	}
	for _, n := range e.opts.MyNetworks {
		if n.Overlaps(p) {
			return true
		}
	}
	return false
}
