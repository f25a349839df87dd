// Package debugpeer is Postfix's debug_peer_list: the clients and upstreams
// whose SMTP sessions are traced line by line in the diagnostic log.
package debugpeer

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"unicode"
)

// List is a debug_peer_list: networks match clients and upstreams by
// address, names match upstreams by host name or domain.
type List struct {
	nets  []netip.Prefix
	names []string
	// everyone is --verbose: every client and upstream is traced, the
	// clients without their message content.
	everyone bool
}

// New reads the list's entries: networks ("192.0.2.0/24",
// "[2001:db8::]/32"), addresses, domain names (".example.org" and
// "example.org" alike match the domain and its subdomains), and files of
// such entries named by an absolute path ("/etc/postfix/debug_peer_list",
// Postfix's /file/name form: entries separated by white space or commas,
// # comments). It returns nil for an empty list: trace nothing. An entry
// that is none of these, such as a lookup table or a network that does not
// parse, is an error naming it, with file and line for an entry of a file:
// Postfix's guides name a file here, which must not be taken for a host.
// With everyone (--verbose), every client and upstream is traced as well.
func New(entries []string, everyone bool) (*List, error) {
	d := &List{}
	var errs []error
	add := func(where, e string) {
		bare := strings.NewReplacer("[", "", "]", "").Replace(e)
		if p, err := netip.ParsePrefix(bare); err == nil {
			d.nets = append(d.nets, p.Masked())
		} else if a, err := netip.ParseAddr(bare); err == nil {
			d.nets = append(d.nets, netip.PrefixFrom(a, a.BitLen()))
		} else if name := strings.TrimPrefix(e, "."); isDomain(name) {
			d.names = append(d.names, strings.ToLower(name))
		} else {
			errs = append(errs, fmt.Errorf("%s%q is not a network, address or domain name", where, e))
		}
	}
	for _, e := range entries {
		e = strings.TrimSpace(e)
		if !strings.HasPrefix(e, "/") {
			if e != "" {
				add("", e)
			}
			continue
		}
		f, err := os.Open(e)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line, _, _ := strings.Cut(sc.Text(), "#")
			for _, w := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
				add(fmt.Sprintf("%s:%d: ", e, n), w)
			}
		}
		if err := sc.Err(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e, err))
		}
		f.Close()
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(d.nets) == 0 && len(d.names) == 0 && !everyone {
		return nil, nil
	}
	d.everyone = everyone
	return d, nil
}

// isDomain reports a host or domain name: dot-separated labels of
// letters, digits, '-' and '_'.
func isDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// Client reports a client address to trace; a nil List has none.
func (d *List) Client(ip netip.Addr) bool {
	return d != nil && (d.everyone || d.Content(ip))
}

// Content reports a client address on the list itself, whose message
// content is traced too; one traced only for --verbose has it left out.
func (d *List) Content(ip netip.Addr) bool {
	if d == nil {
		return false
	}
	ip = ip.Unmap()
	for _, p := range d.nets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// Upstream reports an upstream ("host:port", or a bare host) on the list;
// a nil List has none.
func (d *List) Upstream(addr string) bool {
	if d == nil || addr == "" {
		return false
	}
	if d.everyone {
		return true
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	host = strings.ToLower(strings.Trim(host, "[]"))
	if ip, err := netip.ParseAddr(host); err == nil {
		return d.Client(ip)
	}
	for _, n := range d.names {
		if host == n || strings.HasSuffix(host, "."+n) {
			return true
		}
	}
	return false
}
