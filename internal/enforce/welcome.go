package enforce

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
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
	path string
	now  func() time.Time
	// checkEvery is how often Welcome stats the file; tests set 0.
	checkEvery time.Duration

	mu        sync.RWMutex
	cur       *welcomeEntries // guarded by mu
	version   os.FileInfo     // guarded by mu; the file of cur
	failedVer os.FileInfo     // guarded by mu; a file that did not parse
	failedErr error           // guarded by mu; why
	checked   time.Time       // guarded by mu; last stat by Welcome
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

// OpenWelcomelist reads the welcomelist file path, creating it with
// DefaultWelcomelist if it does not exist.
func OpenWelcomelist(path string) (*Welcomelist, error) {
	w := &Welcomelist{path: path, now: time.Now, checkEvery: welcomeCheckEvery}
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		if err := writeNew(path, DefaultWelcomelist); err != nil {
			return nil, fmt.Errorf("enforce: welcomelist: creating %s: %w", path, err)
		}
	}
	e, fi, err := w.load()
	if err != nil {
		return nil, err
	}
	w.cur, w.version, w.checked = e, fi, w.now()
	return w, nil
}

// Path is the welcomelist file.
func (w *Welcomelist) Path() string { return w.path }

// Welcome reports whether the client at ip, whose verified host name is
// hostname ("" when it has none), is on the list.
func (w *Welcomelist) Welcome(ip netip.Addr, hostname string) bool {
	if w == nil {
		return false // no welcomelist (enforcement off): nobody
	}
	w.maybeReload()
	w.mu.RLock()
	e := w.cur
	w.mu.RUnlock()
	return e.welcome(ip, hostname)
}

// Within reports whether any address the list names (an address, range or
// block; not a host-name pattern) lies in p: a ban of p would cover it.
func (w *Welcomelist) Within(p netip.Prefix) bool {
	if w == nil || !p.IsValid() {
		return false
	}
	w.maybeReload()
	w.mu.RLock()
	e := w.cur
	w.mu.RUnlock()
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

func (w *Welcomelist) maybeReload() {
	now := w.now()
	w.mu.RLock()
	due := now.Sub(w.checked) >= w.checkEvery || now.Before(w.checked)
	w.mu.RUnlock()
	if due {
		// The error stays in failedErr; Reload returns it to whoever logs.
		w.Reload()
	}
}

// Reload re-reads the file if it changed since it was last read (another
// inode, size or mtime) and reports whether a new list is in force. When
// the file has a bad line the old list stays in force and Reload returns
// the error, FILE:LINE: ..., again on each call until the file changes.
func (w *Welcomelist) Reload() (changed bool, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.checked = w.now()
	fi, err := os.Stat(w.path)
	if err != nil {
		return false, fmt.Errorf("enforce: welcomelist: %w", err)
	}
	if sameFileVersion(fi, w.version) {
		return false, nil
	}
	if w.failedVer != nil && sameFileVersion(fi, w.failedVer) {
		return false, w.failedErr
	}
	e, fi, err := w.load()
	if err != nil {
		w.failedVer, w.failedErr = fi, err
		return false, err
	}
	w.cur, w.version, w.failedVer, w.failedErr = e, fi, nil, nil
	return true, nil
}

// load reads and parses the file; fi is the version read, also on a parse
// error.
func (w *Welcomelist) load() (*welcomeEntries, os.FileInfo, error) {
	data, fi, err := readWatched("welcomelist", w.path, true)
	if err != nil {
		return nil, fi, err
	}
	e, err := parseWelcomelist(w.path, string(data))
	return e, fi, err
}

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
		return fmt.Errorf("bad host-name pattern %q: %w", line, err)
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
