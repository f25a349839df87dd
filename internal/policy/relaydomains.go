package policy

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"slices"
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
	p := relayParser{tables: tables, seen: seen}
	for _, e := range entries {
		p.patterns("", e, false, nil)
	}
	return p.rd, errors.Join(p.errs...)
}

// relayParser collects the patterns and problems of parseRelayDomains.
type relayParser struct {
	tables Tables
	seen   fileVersions
	rd     relayDomains
	errs   []error
}

// patterns adds the patterns in s, an item of the setting or a file's line
// (where is "FILE:LINE: "), negated if not: a file or a table, whose
// spec may hold spaces, or names separated by commas or spaces, each of
// which may be a file or a table too (Postfix's match list); files are
// the files being read, which may not name themselves again.
func (p *relayParser) patterns(where, s string, not bool, files []string) {
	s = strings.TrimSpace(s)
	if bare := strings.TrimLeft(s, "!"); strings.HasPrefix(bare, "/") || isTableSpec(bare) {
		p.item(where, s, not, files)
		return
	}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		p.item(where, f, not, files)
	}
}

// item adds the pattern s, each "!" before it negating it.
func (p *relayParser) item(where, s string, not bool, files []string) {
	for strings.HasPrefix(s, "!") {
		s, not = s[1:], !not
	}
	switch {
	case s == "":
		p.errs = append(p.errs, fmt.Errorf("policy.relay_domains: %s\"!\" with nothing to exclude", where))
	case strings.HasPrefix(s, "/"):
		p.file(where, s, not, files)
	case isTableSpec(s):
		if p.tables == nil {
			p.errs = append(p.errs, fmt.Errorf("policy.relay_domains: %s%q: lookup tables are not available", where, s))
			return
		}
		m, err := p.tables.Open(s)
		if err != nil {
			p.errs = append(p.errs, fmt.Errorf("policy.relay_domains: %s%w", where, err))
			return
		}
		p.rd = append(p.rd, relayDomain{table: m, not: not})
	default:
		p.rd = append(p.rd, relayDomain{name: s, not: not})
		// A name in either form of an internationalized domain matches
		// the other form too: "bücher.example" and "xn--bcher-kva.example".
		if a := asciiDomain(s); a != s {
			p.rd = append(p.rd, relayDomain{name: a, not: not})
		}
	}
}

// file adds the patterns on the lines of the file name (# comments), each
// negated if the file is.
func (p *relayParser) file(where, name string, not bool, files []string) {
	if slices.Contains(files, name) {
		p.errs = append(p.errs, fmt.Errorf("policy.relay_domains: %s%s names itself", where, name))
		return
	}
	f, err := p.seen.open(name)
	if err != nil {
		p.errs = append(p.errs, fmt.Errorf("policy.relay_domains: %s%w", where, err))
		return
	}
	defer f.Close()
	files = append(files, name)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		p.patterns(fmt.Sprintf("%s:%d: ", name, n), line, not, files)
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
		// ".example" stands for the subdomains: the enforcer's
		// never-block list covers them by the domain itself.
		if n := strings.TrimPrefix(p.name, "."); p.table == nil && !p.not && n != "" {
			names = append(names, n)
		}
	}
	return names
}
