package policy

import (
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
	// everyOK: a table may hold every domain, since relay_recipient_maps
	// lists the addresses relayed to (no open relay).
	everyOK bool
}

func parseRelayDomains(entries []string, tables Tables, seen fileVersions) (relayDomains, error) {
	return parseRelayDomainsListed(entries, tables, seen, false)
}

// parseRelayDomainsListed reads relay_domains; listed says
// relay_recipient_maps is set, which lets a table hold every domain: only
// the addresses it lists are relayed to (an inbound gateway for many
// domains).
func parseRelayDomainsListed(entries []string, tables Tables, seen fileVersions, listed bool) (relayDomains, error) {
	p := relayParser{tables: tables, everyOK: listed}
	for _, e := range entries {
		readMatchList(&p, seen, "", e, false, nil)
	}
	return p.rd, errors.Join(p.errs...)
}

// relayParser collects the patterns and problems of parseRelayDomains.
type relayParser struct {
	tables  Tables
	rd      relayDomains
	errs    []error
	everyOK bool
}

func (p *relayParser) fail(where string, err error) {
	if where != "" {
		err = fmt.Errorf("%s: %w", where, err)
	}
	p.errs = append(p.errs, &KeyError{"policy.relay_domains", err})
}

func (p *relayParser) table(where, spec string, not bool) {
	if p.tables == nil {
		p.fail(where, fmt.Errorf("%q: lookup tables are not available", spec))
		return
	}
	m, err := p.tables.Open(spec)
	if err != nil {
		p.fail(where, err)
		return
	}
	if !not && !p.everyOK && holdsEveryDomain(m) {
		p.fail(where, fmt.Errorf("%s holds every domain (static:OK, /./ or the like): anyone could relay anywhere (an open relay); list the domains you relay to", spec))
		return
	}
	p.rd = append(p.rd, relayDomain{table: m, not: not, everyOK: p.everyOK})
}

// everyDomain are domains far apart, none a relay's own, that no table of
// relay domains holds all of unless it holds every domain: static:OK, /./
// in a pcre: table. A table is checked as it is read at start and on
// SIGHUP; matches looks again as the table reloads on its own.
var everyDomain = []string{"gmail.com", "yahoo.co.jp", "web.de", "mail.ru", "qq.com", "gov.uk"}

// holdsEveryDomain reports whether m holds every one of everyDomain.
func holdsEveryDomain(m AccessMap) bool {
	for _, d := range everyDomain {
		if _, ok := m.LookupClient(netip.Addr{}, d); !ok {
			return false
		}
	}
	return true
}

func (p *relayParser) pattern(_, s string, not bool) {
	p.rd = append(p.rd, relayDomain{name: s, not: not})
	// A name in either form of an internationalized domain matches the
	// other form too: "bücher.example" and "xn--bcher-kva.example".
	if a := asciiDomain(s); a != s {
		p.rd = append(p.rd, relayDomain{name: a, not: not})
	}
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
	// A host name lookup: the domain, then its parents. A table whose
	// file was changed to hold every domain, and reloaded, holds none
	// unless negated: it must not open the relay.
	_, ok := p.table.LookupClient(netip.Addr{}, strings.ToLower(strings.TrimSuffix(domain, ".")))
	return ok && (p.not || p.everyOK || !holdsEveryDomain(p.table))
}

// RelayDomainNames are the names relay_domains holds and does not exclude,
// from its items and its /file/name files as they are now (a table's keys
// cannot be listed): the relay's own domains, which the enforcer never
// blocks. A problem is left to the Engine, which reports it.
func RelayDomainNames(entries []string) []string {
	rd, _ := parseRelayDomains(entries, nil, nil)
	var names []string
	for _, p := range rd {
		// ".example" stands for the subdomains: the enforcer's
		// never-block list covers them by the domain itself.
		if n := strings.TrimPrefix(p.name, "."); p.table == nil && !p.not && n != "" {
			names = append(names, n)
		}
	}
	return names
}
