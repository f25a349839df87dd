package policy

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"golang.org/x/net/idna"

	"github.com/relaykeeper/relaykeeper/internal/envelope"
)

// relayDomains is relay_domains as Postfix reads it: domain names, files
// of names ("/etc/postfix/relay_domains", several a line, # comments) and
// tables ("hash:/etc/postfix/relay_domains") whose keys are the domains;
// an item of the setting may hold several names too, separated by commas
// or spaces, as main.cf writes them. A domain matches its subdomains too,
// unless written ".domain", which matches subdomains only. Any pattern may
// follow a "!", which excludes what it matches; the first pattern that
// matches decides (Postfix's match list).
type relayDomains []relayDomain

// relayDomain is one pattern: a name or a table, negated by Not.
type relayDomain struct {
	name  string
	table AccessMap
	not   bool
}

func parseRelayDomains(entries []string, tables Tables, seen fileVersions) (relayDomains, error) {
	var rd relayDomains
	var errs []error
	// names adds the names in s, each with its own "!".
	names := func(where, s string, not bool) {
		for _, n := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
			neg := not
			for strings.HasPrefix(n, "!") {
				n, neg = n[1:], !neg
			}
			if n == "" {
				errs = append(errs, fmt.Errorf("policy.relay_domains: %s\"!\" with nothing to exclude", where))
				continue
			}
			rd = append(rd, relayDomain{name: n, not: neg})
			// A name in either form of an internationalized domain
			// matches the other form too: "bücher.example" and
			// "xn--bcher-kva.example".
			if a := asciiDomain(n); a != n {
				rd = append(rd, relayDomain{name: a, not: neg})
			}
		}
	}
	for _, e := range entries {
		bare, not := e, false
		for strings.HasPrefix(bare, "!") {
			bare, not = bare[1:], !not
		}
		switch {
		case strings.HasPrefix(bare, "/"):
			f, err := seen.open(bare)
			if err != nil {
				errs = append(errs, fmt.Errorf("policy.relay_domains: %w", err))
				continue
			}
			sc := bufio.NewScanner(f)
			for n := 1; sc.Scan(); n++ {
				line, _, _ := strings.Cut(sc.Text(), "#")
				names(fmt.Sprintf("%s:%d: ", bare, n), line, not)
			}
			f.Close()
		case isTableSpec(bare):
			if tables == nil {
				errs = append(errs, fmt.Errorf("policy.relay_domains: %q: lookup tables are not available", bare))
				continue
			}
			m, err := tables.Open(bare)
			if err != nil {
				errs = append(errs, fmt.Errorf("policy.relay_domains: %w", err))
				continue
			}
			rd = append(rd, relayDomain{table: m, not: not})
		default:
			names("", e, false)
		}
	}
	return rd, errors.Join(errs...)
}

// asciiDomain is domain's A-label form (RFC 5891), or domain itself if it
// has none.
func asciiDomain(domain string) string {
	a, err := idna.Punycode.ToASCII(domain)
	if err != nil {
		return domain
	}
	return a
}

// has reports whether domain is a relay domain: the first pattern that
// matches it decides.
func (rd relayDomains) has(domain string) bool {
	forms := []string{domain}
	if a := asciiDomain(domain); a != domain {
		forms = append(forms, a)
	}
	for _, p := range rd {
		for _, d := range forms {
			if p.matches(d) {
				return !p.not
			}
		}
	}
	return false
}

// matches reports whether the pattern holds domain.
func (p relayDomain) matches(domain string) bool {
	if p.table == nil {
		return envelope.InDomains(domain, []string{p.name})
	}
	// A host name lookup: the domain, then its parents.
	_, ok := p.table.LookupClient(netip.Addr{}, strings.ToLower(strings.TrimSuffix(domain, ".")))
	return ok
}

// RelayDomainNames are the names relay_domains holds and does not exclude,
// from its items and its /file/name files as they are now (a table's keys
// cannot be listed): the relay's own domains, which the enforcer never
// blocks. A problem is left to the Engine, which reports it.
func RelayDomainNames(entries []string) []string {
	rd, _ := parseRelayDomains(entries, nil, nil)
	var names []string
	for _, p := range rd {
		if p.table == nil && !p.not {
			names = append(names, p.name)
		}
	}
	return names
}
