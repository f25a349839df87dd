package policy

import (
	"bufio"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strings"

	"golang.org/x/net/idna"

	"github.com/relaykeeper/relaykeeper/internal/envelope"
)

// relayDomains is relay_domains as Postfix reads it: domain names, files
// of names ("/etc/postfix/relay_domains", several a line, # comments) and
// tables ("hash:/etc/postfix/relay_domains") whose keys are the domains.
// A domain matches its subdomains too, unless written ".domain", which
// matches subdomains only.
type relayDomains struct {
	names  []string
	tables []AccessMap
}

func parseRelayDomains(entries []string, tables Tables) (relayDomains, error) {
	var rd relayDomains
	var errs []error
	for _, e := range entries {
		switch {
		case strings.HasPrefix(e, "/"):
			f, err := os.Open(e)
			if err != nil {
				errs = append(errs, fmt.Errorf("policy.relay_domains: %w", err))
				continue
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				line, _, _ := strings.Cut(sc.Text(), "#")
				rd.names = append(rd.names, strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })...)
			}
			f.Close()
		case isTableSpec(e):
			if tables == nil {
				errs = append(errs, fmt.Errorf("policy.relay_domains: %q: lookup tables are not available", e))
				continue
			}
			m, err := tables.Open(e)
			if err != nil {
				errs = append(errs, fmt.Errorf("policy.relay_domains: %w", err))
				continue
			}
			rd.tables = append(rd.tables, m)
		default:
			rd.names = append(rd.names, e)
		}
	}
	// A name in either form of an internationalized domain matches the
	// other form too: "bücher.example" and "xn--bcher-kva.example".
	for _, n := range rd.names {
		if a := asciiDomain(n); a != n {
			rd.names = append(rd.names, a)
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

// has reports whether domain is a relay domain.
func (rd relayDomains) has(domain string) bool {
	forms := []string{domain}
	if a := asciiDomain(domain); a != domain {
		forms = append(forms, a)
	}
	for _, d := range forms {
		if envelope.InDomains(d, rd.names) {
			return true
		}
		d = strings.ToLower(strings.TrimSuffix(d, "."))
		for _, m := range rd.tables {
			// A host name lookup: the domain, then its parents.
			if _, ok := m.LookupClient(netip.Addr{}, d); ok {
				return true
			}
		}
	}
	return false
}
