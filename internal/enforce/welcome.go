package enforce

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"regexp/syntax"
	"strings"
	"syscall"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// welcomeCheckEvery is how often Welcome looks at the file's mtime.
const welcomeCheckEvery = 3 * time.Second

// Welcomelist names the clients that are never banned and whose domains
// are never blocked: a refusal of their mail is answered by forwarding it
// encapsulated instead. Its file has relay-enforcer's format, so that an
// existing relay-enforcer.welcomelist works unchanged:
//
//	# comment; a '#' and the spaces before it end any line
//	203.0.113.7                  a plain IPv4 or IPv6 address
//	198.51.100.10-198.51.100.20  a range, both ends included (grepcidr)
//	10.0.0.0/8                   a CIDR block, IPv4 or IPv6
//	^mail-[a-z0-9-]+\.example\.com$   anything else: a host-name pattern
//
// Leading spaces are allowed, blank lines ignored. A host-name pattern is
// an extended regular expression (Go's RE2 syntax, which accepts what egrep
// users write short of back-references) matched against the client's
// verified host name, lower-case and without the final dot. As with
// relay-enforcer's egrep it is not anchored: "example\.com" also matches
// "example.com.attacker.net", so anchor patterns with ^ and $. Matching
// ignores case, as DNS does. A line made only of digits, dots, slashes and
// dashes, or holding a ':', must be an address, range or CIDR block: a typo
// there is an error, not a pattern that matches nothing.
//
// A Welcomelist is safe for concurrent use. It re-reads its file when the
// file changes (checked at most every few seconds by Welcome, or at once by
// Reload); a file with a bad line is refused whole, and the old list stays
// in force.
type Welcomelist struct {
	file *watched[*welcomeEntries]
}

type welcomeEntries struct {
	prefixes []netip.Prefix
	ranges   [][2]netip.Addr
	patterns []*regexp.Regexp
}

// DefaultWelcomelist is the file OpenWelcomelist creates when there is
// none: loopback and the private networks, as relay-enforcer creates it.
const DefaultWelcomelist = `# relaykeeper welcomelist: clients that are never banned and whose sender
# domains are never blocked; a refusal of their mail is forwarded
# encapsulated instead. One entry per line, in relay-enforcer's format:
#
#   203.0.113.7                   a plain IPv4 or IPv6 address
#   198.51.100.10-198.51.100.20   a range, both ends included
#   2001:db8::/32                 a CIDR block, IPv4 or IPv6
#   ^mx[0-9]*\.example\.com$      anything else: an extended regular
#                                 expression matched against the client's
#                                 verified host name; not anchored, so
#                                 anchor it with ^ and $, and escape dots
#
# '#' starts a comment, also after an entry; leading spaces are allowed.
# The file is re-read within seconds of a change; if a line is wrong the
# whole file is refused, the error names FILE:LINE, and the old list stays.

# Loopback
127.0.0.0/8
::1

# Private networks (RFC 1918) and IPv6 unique local addresses (RFC 4193)
10.0.0.0/8
172.16.0.0/12
192.168.0.0/16
fc00::/7

# Link-local addresses (RFC 3927, RFC 4291)
169.254.0.0/16
fe80::/10
`

// OpenWelcomelist reads the welcomelist file path, creating it if it does
// not exist with DefaultWelcomelist and this host's own addresses, as
// relay-enforcer creates its list ("local ips and all possible
// local-network ips"): a program on the relay's host that connects to its
// public address is local submission, not a client to ban.
func OpenWelcomelist(path string) (*Welcomelist, error) {
	var w *Welcomelist
	parse := func(name string, data []byte) (*welcomeEntries, error) {
		// A file rewritten in place (an editor, "cat >") is empty for a
		// moment: read then, it took the list away, and a welcomelisted
		// client's refusal got it banned until the next look. Called
		// by Reload with w.file's lock held.
		if len(data) == 0 && w != nil && !w.file.cur.empty() {
			return nil, fmt.Errorf("%s: empty, as a file is for a moment while it is rewritten in place; the list in force stays until the file holds a line (a comment will do)", name)
		}
		return parseWelcomelist(name, string(data))
	}
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		created := createdWelcomelist(hostAddrs())
		if err := writeNew(path, created); err != nil {
			if dir := filepath.Dir(path); errors.Is(err, os.ErrNotExist) {
				// Not the temporary file's name, which says nothing.
				return nil, fmt.Errorf("enforce: welcomelist: cannot create %s: no directory %s (make it, or name another file)", path, dir)
			}
			if !errors.Is(err, syscall.ENOSPC) && !errors.Is(err, syscall.EDQUOT) {
				return nil, fmt.Errorf("enforce: welcomelist: creating %s: %w", path, err)
			}
			// A full file system (the spool's, where the list lives by
			// default) must not keep the relay from starting and
			// draining its queue: the list it would have written is in
			// force from memory, and a file put there later is read.
			e, perr := parse(path, []byte(created))
			if perr != nil {
				return nil, perr
			}
			f := &watched[*welcomeEntries]{what: "welcomelist", path: path, devices: true, parse: parse,
				now: time.Now, checkEvery: welcomeCheckEvery, cur: e}
			f.checked = f.now()
			w = &Welcomelist{file: f}
			return w, nil
		}
	}
	// /dev/null is an empty list, as in Postfix's tables.
	f, err := openWatched("welcomelist", path, true, parse)
	if err != nil {
		return nil, err
	}
	w = &Welcomelist{file: f}
	return w, nil
}

// empty reports whether e lists nothing.
func (e *welcomeEntries) empty() bool {
	return e == nil || len(e.prefixes) == 0 && len(e.ranges) == 0 && len(e.patterns) == 0
}

// hostAddrs lists this host's addresses (net.InterfaceAddrs); tests that
// are not parallel replace it.
var hostAddrs = func() []netip.Addr {
	nets, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	var out []netip.Addr
	for _, n := range nets {
		if ipn, ok := n.(*net.IPNet); ok {
			if a, ok := netip.AddrFromSlice(ipn.IP); ok {
				out = append(out, a.Unmap())
			}
		}
	}
	return out
}

// createdWelcomelist is DefaultWelcomelist followed by the addresses of own
// that it does not already cover, each on a line of its own.
func createdWelcomelist(own []netip.Addr) string {
	def, _ := parseWelcomelist("", DefaultWelcomelist)
	var b strings.Builder
	seen := map[netip.Addr]bool{}
	for _, a := range own {
		a = banIP(a)
		if !a.IsValid() || a.IsUnspecified() || a.IsMulticast() || seen[a] || def.welcome(a, "") {
			continue
		}
		seen[a] = true
		b.WriteString(a.String() + "\n")
	}
	if b.Len() == 0 {
		return DefaultWelcomelist
	}
	return DefaultWelcomelist + "\n# This host's own addresses when the file was made (its programs' mail)\n" + b.String()
}

// Path is the welcomelist file.
func (w *Welcomelist) Path() string { return w.file.path }

// Welcome reports whether the client at ip, whose verified host name is
// hostname ("" when it has none), is on the list.
func (w *Welcomelist) Welcome(ip netip.Addr, hostname string) bool {
	if w == nil {
		return false // no welcomelist (enforcement off): nobody
	}
	return w.file.get().welcome(ip, hostname)
}

// NeedsNames reports whether the list holds a host-name pattern: the
// relay must then look up each client's verified name, or the pattern
// never matches and the client it names is banned like any other
// (relay-enforcer's manual: "emails from a welcomelisted IP or hostname
// will be encapsulated").
func (w *Welcomelist) NeedsNames() bool { return w != nil && len(w.file.get().patterns) > 0 }

// Within reports whether any address the list names (an address, range or
// block; not a host-name pattern) lies in p: a ban of p would cover it.
func (w *Welcomelist) Within(p netip.Prefix) bool {
	if w == nil || !p.IsValid() {
		return false
	}
	e := w.file.get()
	for _, q := range e.prefixes {
		if q.Overlaps(p) {
			return true
		}
	}
	p = p.Masked()
	last := lastAddr(p)
	for _, r := range e.ranges {
		if r[0].BitLen() == p.Addr().BitLen() && r[0].Compare(last) <= 0 && p.Addr().Compare(r[1]) <= 0 {
			return true
		}
	}
	return false
}

// lastAddr is the last address of the masked prefix p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Addr().AsSlice()
	for i := p.Bits(); i < len(b)*8; i++ {
		b[i/8] |= 0x80 >> (i % 8)
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// Reload re-reads the file if it changed since it was last read (another
// inode, size or mtime) and reports whether a new list is in force. When
// the file has a bad line the old list stays in force and Reload returns
// the error, FILE:LINE: ..., again on each call until the file changes.
func (w *Welcomelist) Reload() (changed bool, err error) { return w.file.Reload() }

// parseWelcomelist parses a welcomelist; an error names FILE:LINE.
func parseWelcomelist(name, text string) (*welcomeEntries, error) {
	e := &welcomeEntries{}
	var errs []error
	for i, line := range strings.Split(text, "\n") {
		if err := e.addLine(line); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, i+1, err))
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return e, nil
}

func (e *welcomeEntries) addLine(line string) error {
	if i := strings.IndexByte(line, '#'); i >= 0 {
		line = line[:i]
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return nil
	}
	if ip, err := netip.ParseAddr(line); err == nil {
		if ip.Zone() != "" {
			return fmt.Errorf("an address with a zone cannot match a client: %q", line)
		}
		ip = ip.Unmap()
		e.prefixes = append(e.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
		return nil
	}
	if p, err := netip.ParsePrefix(line); err == nil {
		// grepcidr accepts host bits in a CIDR block; so do we.
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		e.prefixes = append(e.prefixes, p.Masked())
		return nil
	}
	if lo, hi, ok := strings.Cut(line, "-"); ok {
		a, errA := netip.ParseAddr(strings.TrimSpace(lo))
		b, errB := netip.ParseAddr(strings.TrimSpace(hi))
		if errA == nil && errB == nil {
			a, b = a.Unmap(), b.Unmap()
			if a.Zone() != "" || b.Zone() != "" || a.Is4() != b.Is4() {
				return fmt.Errorf("bad range %q: both ends must be addresses of one family", line)
			}
			if b.Less(a) {
				return fmt.Errorf("bad range %q: the first address is after the last", line)
			}
			e.ranges = append(e.ranges, [2]netip.Addr{a, b})
			return nil
		}
	}
	if looksLikeAddress(line) {
		return fmt.Errorf("not an address, range or CIDR block: %q", line)
	}
	re, err := regexp.Compile("(?i)" + table.GNUWordAnchors(line))
	if err != nil {
		// The parser's error quotes the pattern whole: a line of a
		// megabyte would be two megabytes of error.
		var se *syntax.Error
		if errors.As(err, &se) {
			return fmt.Errorf("bad host-name pattern %q: %s: %q", clipReplyText(line), se.Code, clipReplyText(se.Expr))
		}
		return fmt.Errorf("bad host-name pattern %q: %w", clipReplyText(line), err)
	}
	e.patterns = append(e.patterns, re)
	return nil
}

// looksLikeAddress reports whether s was meant as an address, a range or a
// CIDR block rather than a host-name pattern: only digits, dots, slashes
// and dashes with a digit, or a colon among hex digits.
func looksLikeAddress(s string) bool {
	digit, colon := false, false
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c == '.' || c == '/' || c == '-':
		case c == ':':
			colon = true
		case c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '%' || c == ' ':
			if !colon && !strings.Contains(s, ":") {
				return false
			}
		default:
			return false
		}
	}
	return digit || colon
}

func (e *welcomeEntries) welcome(ip netip.Addr, hostname string) bool {
	if ip.IsValid() {
		ip = banIP(ip)
		for _, p := range e.prefixes {
			if p.Contains(ip) {
				return true
			}
		}
		for _, r := range e.ranges {
			if r[0].BitLen() == ip.BitLen() && r[0].Compare(ip) <= 0 && ip.Compare(r[1]) <= 0 {
				return true
			}
		}
	}
	hostname = strings.TrimSuffix(strings.ToLower(hostname), ".")
	if hostname == "" {
		return false
	}
	for _, re := range e.patterns {
		if re.MatchString(hostname) {
			return true
		}
	}
	return false
}
