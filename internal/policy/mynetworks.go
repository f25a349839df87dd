package policy

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
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

// matches reports whether the rule's network or table holds ip.
func (r NetworkRule) matches(ip netip.Addr) bool {
	if r.Table != nil {
		_, ok := r.Table.Lookup(ip.String())
		return ok
	}
	return r.Prefix.Contains(ip)
}

// ParseNetworks reads mynetworks as Postfix does: networks and bare
// addresses ("192.0.2.0/24", "[2001:db8::]/32"), files of them named by an
// absolute path ("/etc/postfix/network_table", Postfix's /file/name form,
// with # comments), and lookup tables ("cidr:/etc/postfix/mynetworks.cidr"),
// opened in tables so that they reload with the others; any of them after
// a "!", which excludes what it holds. The rules are in the setting's
// order: the first that holds a client decides (Postfix's match list), and
// a client is in mynetworks if that one is not negated. Every problem is
// reported, each with where it is.
func ParseNetworks(entries []string, tables *table.Set) ([]NetworkRule, error) {
	var rules []NetworkRule
	var errs []error
	// add reads the networks in s, from a file's line where ("FILE:LINE")
	// or, with where "", from the setting itself.
	add := func(where, s string, not bool) {
		for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			// Postfix writes IPv6 networks "[2001:db8::]/32".
			bare := strings.NewReplacer("[", "", "]", "").Replace(f)
			if p, err := netip.ParsePrefix(bare); err == nil {
				rules = append(rules, NetworkRule{Prefix: p.Masked(), Not: not})
			} else if a, err := netip.ParseAddr(bare); err == nil {
				rules = append(rules, NetworkRule{Prefix: netip.PrefixFrom(a, a.BitLen()), Not: not})
			} else if where == "" {
				errs = append(errs, &KeyError{"policy.mynetworks", fmt.Errorf("%q is not a network", f)})
			} else {
				errs = append(errs, fmt.Errorf("%s: %q is not a network", where, f))
			}
		}
	}
	for _, e := range entries {
		e, not := strings.CutPrefix(e, "!")
		switch {
		case strings.HasPrefix(e, "/"):
			f, err := os.Open(e)
			if err != nil {
				errs = append(errs, &KeyError{"policy.mynetworks", err})
				continue
			}
			sc := bufio.NewScanner(f)
			for n := 1; sc.Scan(); n++ {
				if line, _, _ := strings.Cut(sc.Text(), "#"); strings.TrimSpace(line) != "" {
					add(fmt.Sprintf("%s:%d", e, n), line, not)
				}
			}
			f.Close()
		case isTableSpec(e):
			t, err := tables.Open(e)
			if err != nil {
				errs = append(errs, &KeyError{"policy.mynetworks", err})
				continue
			}
			rules = append(rules, NetworkRule{Table: t, Not: not})
		case e == "":
			errs = append(errs, &KeyError{"policy.mynetworks", errors.New(`"!" with nothing to exclude`)})
		default:
			add("", e, not)
		}
	}
	return rules, errors.Join(errs...)
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
