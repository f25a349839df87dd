package enforce

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

// Ban durations and delays, as relay-enforcer's fail2ban jail has them.
const (
	// DefaultBanDuration is how long a ban lasts when Add is given none:
	// relay-enforcer's jail bans for 14700 s, about four hours.
	DefaultBanDuration = 4 * time.Hour
	// DefaultBanDelay is how long after Add a ban takes effect, so that
	// the reply to the client's own session still goes out and a later
	// refusal counts a new attempt (relay-enforcer 2.2 waits 10 s).
	DefaultBanDelay = 10 * time.Second
)

// BanEntry is one client IP, or one network of client IPs (an IPv6
// client's /64 by default, BanNet), that may not connect.
type BanEntry struct {
	// IP is the banned address, or the first address of the banned
	// network, whose prefix length is Bits (zero: IP alone). JSON adds
	// "net", the ban's Target.
	IP   netip.Addr `json:"ip"`
	Bits int        `json:"bits,omitzero"`
	// Client, if known, is the client whose refusal made the ban.
	Client netip.Addr `json:"client,omitzero"`
	// From is when the ban takes effect; Until when it ends.
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
	// Reason is the last reason given, on one line.
	Reason string `json:"reason"`
	// Added is when the IP was first banned (this time round); zero when
	// a hand-written line does not say.
	Added time.Time `json:"added,omitzero"`
}

// Network is what the ban covers: IP/Bits, or IP alone.
func (b BanEntry) Network() netip.Prefix {
	ip := banIP(b.IP)
	if b.Bits > 0 && b.Bits < ip.BitLen() {
		return netip.PrefixFrom(ip, b.Bits).Masked()
	}
	return netip.PrefixFrom(ip, ip.BitLen())
}

// MarshalJSON adds "net", the Target, to the entry's fields.
func (b BanEntry) MarshalJSON() ([]byte, error) { return marshalBan(b, "") }

// marshalBan is b's JSON, with "not_applied": notApplied unless empty.
func marshalBan(b BanEntry, notApplied string) ([]byte, error) {
	type plain BanEntry
	return json.Marshal(struct {
		plain
		Net        string `json:"net"`
		NotApplied string `json:"not_applied,omitempty"`
	}{plain(b), b.Target(), notApplied})
}

// newBanEntry is a ban of p.
func newBanEntry(p netip.Prefix) BanEntry {
	if p.IsSingleIP() {
		return BanEntry{IP: p.Addr()}
	}
	return BanEntry{IP: p.Addr(), Bits: p.Bits()}
}

// Target is the ban's network as it is written and shown: the address
// alone for a single one, ADDR/LEN for a network.
func (b BanEntry) Target() string { return banTarget(b.Network()) }

// Active reports whether the ban is in force at t.
func (b BanEntry) Active(t time.Time) bool {
	return !t.Before(b.From) && t.Before(b.Until)
}

// Bans is the list of banned client IPs, kept in memory for Banned and in
// a small text file for restarts and for the `relaykeeper bans` command.
//
// # File
//
// One ban per line, fields separated by spaces, values quoted as in the
// mail log when they hold spaces:
//
//	203.0.113.9 until=2026-11-22T14:00:10Z reason="550 5.7.1 ..." added=2026-11-22T10:00:00Z from=2026-11-22T10:00:10Z
//
// until is required; reason, added and from are optional (from defaults to
// added: in force at once). Unknown keys are ignored, so that later versions
// may add some. '#' starts a comment line; blank lines are ignored. A line
// that does not parse is reported (FILE:LINE, see Problems) and skipped; it
// is never fatal, and the next rewrite keeps it, commented out as
// "# bad line: ...", so that nothing typed by hand is lost.
//
// # Durability and sharing
//
// Every change rewrites the whole file: a temporary file beside it,
// written, fsynced, renamed over the old one, and the directory fsynced.
// Several processes may share the file (the daemon and the bans command):
// a change takes an flock(2) on FILE.lock, re-reads the file if another
// process changed it, applies the change, and rewrites it, so neither
// loses the other's changes. Expired bans are dropped at each rewrite.
//
// Banned reads only the in-memory map. Reload re-reads the file when it
// changed (inode, size or mtime), at the cost of one stat(2) otherwise;
// the daemon calls it on its five-second table timer and on SIGHUP, so a
// `relaykeeper bans remove` takes effect within seconds.
//
// A Bans is safe for concurrent use.
type Bans struct {
	path  string
	clock func() time.Time

	// Delay is how long after Add a new ban takes effect; OpenBans sets
	// DefaultBanDelay, zero means at once. Set it before first use.
	Delay time.Duration
	// Width is how wide Add bans a client (BanNet); zero: the defaults
	// (an IPv4 address, an IPv6 /64). Set it before first use.
	Width BanWidth
	// Spare, if set, says which clients no ban of a network covers,
	// besides their own address's (the welcomelist's addresses, trusted
	// networks), and Add bans a client alone when its network holds one.
	// Set it before first use.
	Spare Sparer

	mu       sync.RWMutex
	bans     map[netip.Prefix]BanEntry // guarded by mu; by Network
	lens     []int                     // guarded by mu; the prefix lengths in bans
	bad      []string                  // guarded by mu; lines kept commented out
	problems []error                   // guarded by mu; from the last read
	version  os.FileInfo               // guarded by mu; the file last read or written
}

// OpenBans reads the ban file path, which need not exist yet. clock is the
// time source (nil: time.Now). Lines that do not parse are skipped and
// reported by Problems; only a file that cannot be read is an error.
func OpenBans(path string, clock func() time.Time) (*Bans, error) {
	if clock == nil {
		clock = time.Now
	}
	b := &Bans{path: path, clock: clock, Delay: DefaultBanDelay, bans: map[netip.Prefix]BanEntry{}}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.readLocked(); err != nil {
		return nil, err
	}
	return b, nil
}

// Path is the ban file.
func (b *Bans) Path() string { return b.path }

// Problems are the lines of the last read that did not parse, each
// "FILE:LINE: ...".
func (b *Bans) Problems() []error {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return slices.Clone(b.problems)
}

// WarnProblems logs each line of the file that did not parse, as
// FILE:LINE: at start, and after a reload that read the file again, so
// that a ban written by hand and skipped does not go unnoticed.
func (b *Bans) WarnProblems(log *slog.Logger) {
	for _, p := range b.Problems() {
		log.Warn("ban list line skipped", "err", p)
	}
}

// Banned reports whether ip is banned now, and the ban: one of ip alone,
// or of a network holding ip unless Spare spares ip.
func (b *Bans) Banned(ip netip.Addr) (BanEntry, bool) { return b.lookup(ip, "", BanEntry.Active) }

// BannedClient is Banned for a client whose verified host name is name
// ("" when not known): a welcomelist's host-name pattern that matches
// name spares it as its address would.
func (b *Bans) BannedClient(ip netip.Addr, name string) (BanEntry, bool) {
	return b.lookup(ip, name, BanEntry.Active)
}

// DueClient is Due for a client whose verified host name is name, as
// BannedClient is Banned.
func (b *Bans) DueClient(ip netip.Addr, name string) (BanEntry, bool) {
	return b.lookup(ip, name, b.due)
}

// NamesSpare reports whether a client's verified host name may spare it
// from a ban (the welcomelist has a host-name pattern): the relay then
// looks the name of a banned client up before it refuses it.
func (b *Bans) NamesSpare() bool { return b.Spare != nil && b.Spare.NamesWelcome() }

// Due reports whether ip is banned now or will be within the ban delay
// (Delay), and the ban: the mail such a client submits meanwhile is held,
// as its queued mail was when the ban was added. A ban written by hand to
// start later than that is not due yet.
func (b *Bans) Due(ip netip.Addr) (BanEntry, bool) { return b.lookup(ip, "", b.due) }

// due reports whether ban is in force at t or will be within the ban
// delay.
func (b *Bans) due(ban BanEntry, t time.Time) bool {
	// A second more: Add rounds the start up to a whole second.
	return t.Before(ban.Until) && !ban.From.After(t.Add(b.Delay+time.Second))
}

// lookup returns ip's ban if keep says it counts now: of the bans of ip
// and of the networks holding it, the one that ends last. name is the
// client's verified host name, "" when not known.
func (b *Bans) lookup(ip netip.Addr, name string, keep func(BanEntry, time.Time) bool) (BanEntry, bool) {
	ip = banIP(ip)
	if !ip.IsValid() {
		return BanEntry{}, false
	}
	var found []BanEntry
	b.mu.RLock()
	for _, bits := range b.lens {
		if p, err := ip.Prefix(bits); err == nil && bits <= ip.BitLen() {
			if ban, ok := b.bans[p]; ok {
				found = append(found, ban)
			}
		}
	}
	b.mu.RUnlock()
	now := b.clock()
	var best BanEntry
	ok := false
	for _, ban := range found {
		if !keep(ban, now) || ok && !ban.Until.After(best.Until) {
			continue
		}
		// A welcomelisted or trusted client is never caught by a ban of
		// its neighbour's network; only a ban of its own address (by
		// hand) holds a trusted one. A welcomelisted one is never held:
		// a ban made before it was listed is ignored while it is (not
		// lifted: the file may be shared with relays whose welcomelist
		// differs, and the ban holds again if the entry goes).
		if b.Spare != nil && (b.Spare.Welcomed(ip, name) || !ban.Network().IsSingleIP() && b.Spare.Spared(ip)) {
			continue
		}
		best, ok = ban, true
	}
	return best, ok
}

// List returns the bans in force or yet to take effect, by IP.
func (b *Bans) List() []BanEntry {
	now := b.clock()
	b.mu.RLock()
	out := make([]BanEntry, 0, len(b.bans))
	for _, ban := range b.bans {
		if now.Before(ban.Until) {
			out = append(out, ban)
		}
	}
	b.mu.RUnlock()
	slices.SortFunc(out, compareBans)
	return out
}

// compareBans orders bans by network address, then by width.
func compareBans(x, y BanEntry) int {
	return x.Network().Compare(y.Network())
}

// Add bans the client at ip, with the network BanNet gives it (Width,
// Spare: an IPv6 client's /64 by default), for d (zero or less:
// DefaultBanDuration) from Delay after now. If that network is banned
// already the ban is extended, never shortened: it ends at the later of the
// two ends, takes effect at the earlier of the two starts, and takes the
// new reason. It returns the ban as it now stands. On an error writing the
// file the ban is in force in this process all the same.
func (b *Bans) Add(ip netip.Addr, d time.Duration, reason string) (BanEntry, error) {
	ip = banIP(ip)
	if !ip.IsValid() {
		return BanEntry{}, errors.New("enforce: ban: invalid IP address")
	}
	return b.add(BanNet(ip, b.Width, b.Spare), ip, d, reason)
}

// AddNet bans the network p (an address alone for /32 or /128), as an
// administrator asks: no width is applied. See Add.
func (b *Bans) AddNet(p netip.Prefix, d time.Duration, reason string) (BanEntry, error) {
	if !p.IsValid() {
		return BanEntry{}, errors.New("enforce: ban: invalid IP network")
	}
	return b.add(normalNet(p), netip.Addr{}, d, reason)
}

// normalNet is p as the ban list keys it: IPv4-mapped as IPv4, without
// zone, host bits cleared.
func normalNet(p netip.Prefix) netip.Prefix {
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return netip.PrefixFrom(p.Addr().WithZone(""), p.Bits()).Masked()
}

func (b *Bans) add(p netip.Prefix, client netip.Addr, d time.Duration, reason string) (BanEntry, error) {
	if client == p.Addr() && p.IsSingleIP() {
		client = netip.Addr{} // the ban says it already
	}
	if d <= 0 {
		d = DefaultBanDuration
	}
	now := b.clock().UTC()
	// Rounded up, never down: a ban must not start before its delay is
	// over (the file keeps whole seconds).
	from := now.Truncate(time.Second) // in force at once
	if b.Delay > 0 {
		from = ceilSecond(now.Add(b.Delay))
	}
	now = now.Truncate(time.Second)
	nb := newBanEntry(p)
	nb.Client, nb.From, nb.Until, nb.Reason, nb.Added = client, from, from.Add(d), singleLine(reason), now
	var out BanEntry
	err := b.change(func() {
		if old, ok := b.bans[p]; ok && now.Before(old.Until) {
			nb.From = earliestTime(old.From, nb.From)
			nb.Until = latestTime(old.Until, nb.Until)
			if !old.Added.IsZero() {
				nb.Added = old.Added
			}
		}
		b.bans[p] = nb
		out = nb
	})
	return out, err
}

// Remove lifts the bans that keep ip out: its own, and those of the
// networks holding it. It reports whether there was one in force or
// pending. See Lift.
func (b *Bans) Remove(ip netip.Addr) (removed bool, err error) {
	ip = banIP(ip)
	if !ip.IsValid() {
		return false, nil
	}
	lifted, err := b.Lift(netip.PrefixFrom(ip, ip.BitLen()))
	return len(lifted) > 0, err
}

// Lift lifts every ban that overlaps p: for an address, its own ban and
// those of the networks that hold it (2001:db8::7 lifts 2001:db8::/64);
// for a network, also the bans inside it. It returns the bans lifted that
// were in force or pending, so that the caller can say which networks are
// free again. On an error writing the file the bans are lifted in this
// process all the same.
func (b *Bans) Lift(p netip.Prefix) (lifted []BanEntry, err error) {
	p = normalNet(p)
	err = b.change(func() {
		now := b.clock()
		for k, old := range b.bans {
			if k.Overlaps(p) {
				if now.Before(old.Until) {
					lifted = append(lifted, old)
				}
				delete(b.bans, k)
			}
		}
	})
	slices.SortFunc(lifted, compareBans)
	return lifted, err
}

// Reload re-reads the file if it changed since it was last read or
// written. It reports whether it did; the lines that did not parse are in
// Problems.
func (b *Bans) Reload() (changed bool, err error) {
	fi, err := os.Stat(b.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return false, fmt.Errorf("enforce: bans: %w", err)
	}
	b.mu.RLock()
	same := sameFileVersion(fi, b.version)
	b.mu.RUnlock()
	if same {
		return false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.readLocked(); err != nil {
		return false, err
	}
	return true, nil
}

// change applies f to the map under both locks, after catching up with
// the file, and rewrites the file.
func (b *Bans) change(f func()) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	unlock, lerr := flockPath(b.path + ".lock")
	if lerr == nil {
		defer unlock()
	}
	fi, err := os.Stat(b.path)
	if err == nil || errors.Is(err, os.ErrNotExist) {
		if !sameFileVersion(fi, b.version) {
			if err := b.readLocked(); err != nil {
				f()
				b.lens = prefixLengths(b.bans)
				return err
			}
		}
	}
	f()
	b.lens = prefixLengths(b.bans)
	if lerr != nil {
		return fmt.Errorf("enforce: bans: %w", lerr)
	}
	return b.writeLocked()
}

// prefixLengths are the distinct widths of bans, for lookup.
func prefixLengths(bans map[netip.Prefix]BanEntry) []int {
	var lens []int
	for p := range bans {
		if !slices.Contains(lens, p.Bits()) {
			lens = append(lens, p.Bits())
		}
	}
	slices.Sort(lens)
	return lens
}

// readLocked replaces the map with the file's contents. A missing file is
// an empty list.
func (b *Bans) readLocked() error {
	f, err := safefile.Open(b.path)
	if errors.Is(err, os.ErrNotExist) {
		b.bans, b.lens, b.bad, b.problems, b.version = map[netip.Prefix]BanEntry{}, nil, nil, nil, nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("enforce: bans: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("enforce: bans: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return fmt.Errorf("enforce: bans: %w", err)
	}
	bans, bad, problems := parseBans(b.path, string(data))
	b.bans, b.lens, b.bad, b.problems, b.version = bans, prefixLengths(bans), bad, problems, fi
	return nil
}

func (b *Bans) writeLocked() error {
	now := b.clock()
	var list []BanEntry
	for ip, ban := range b.bans {
		if now.Before(ban.Until) {
			list = append(list, ban)
		} else {
			delete(b.bans, ip)
		}
	}
	slices.SortFunc(list, compareBans)
	data := []byte(formatBans(list, b.bad))
	// Root ("sudo relaykeeper bans add") keeps the file the relay's.
	opts := safefile.Options{Perm: 0o640, Owner: safefile.DirOwner(filepath.Dir(b.path))}
	if err := safefile.Replace(b.path, opts, func(w io.Writer) error { _, err := w.Write(data); return err }); err != nil {
		return fmt.Errorf("enforce: bans: %w", err)
	}
	fi, err := os.Stat(b.path)
	if err != nil {
		return fmt.Errorf("enforce: bans: %w", err)
	}
	b.version = fi
	return nil
}

const bansHeader = `# relaykeeper bans: one banned client IP or network per line, rewritten by
# relaykeeper. Change it with "relaykeeper bans add|remove", or by hand: it is
# re-read when it changes.
# IP|IP/LEN until=TIME [reason="..."] [added=TIME] [from=TIME] [client=IP]
`

// badLinePrefix starts a line that did not parse, kept in the file.
const badLinePrefix = "# bad line: "

// formatBans is the file's text for list; bad lines are kept commented out.
func formatBans(list []BanEntry, bad []string) string {
	var sb strings.Builder
	sb.WriteString(bansHeader)
	for _, l := range bad {
		sb.WriteString(badLinePrefix)
		sb.WriteString(l)
		sb.WriteByte('\n')
	}
	for _, ban := range list {
		sb.WriteString(formatBan(ban))
		sb.WriteByte('\n')
	}
	return sb.String()
}

func formatBan(ban BanEntry) string {
	var sb strings.Builder
	sb.WriteString(ban.Target())
	sb.WriteString(" until=")
	sb.WriteString(ban.Until.UTC().Format(time.RFC3339Nano))
	if ban.Reason != "" {
		sb.WriteString(" reason=")
		sb.WriteString(quoteBanValue(ban.Reason))
	}
	if !ban.Added.IsZero() {
		sb.WriteString(" added=")
		sb.WriteString(ban.Added.UTC().Format(time.RFC3339Nano))
	}
	if !ban.From.IsZero() && !ban.From.Equal(ban.Added) {
		sb.WriteString(" from=")
		sb.WriteString(ban.From.UTC().Format(time.RFC3339Nano))
	}
	if ban.Client.IsValid() {
		sb.WriteString(" client=")
		sb.WriteString(ban.Client.String())
	}
	return sb.String()
}

// parseBans reads a ban file. Of two lines for one IP or network the later
// end wins. bad holds the lines that did not parse, problems says why.
func parseBans(name, text string) (bans map[netip.Prefix]BanEntry, bad []string, problems []error) {
	bans = map[netip.Prefix]BanEntry{}
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if l, ok := strings.CutPrefix(line, badLinePrefix); ok {
			if l = singleLine(l); l != "" {
				bad = append(bad, l)
			}
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		ban, err := parseBan(line)
		if err != nil {
			if l := singleLine(line); l != "" {
				bad = append(bad, l)
			}
			problems = append(problems, fmt.Errorf("%s:%d: %w", name, i+1, err))
			continue
		}
		if old, ok := bans[ban.Network()]; ok && old.Until.After(ban.Until) {
			continue
		}
		bans[ban.Network()] = ban
	}
	return bans, bad, problems
}

func parseBan(line string) (BanEntry, error) {
	ipText, rest := line, ""
	if i := strings.IndexAny(line, " \t"); i >= 0 {
		ipText, rest = line[:i], line[i:]
	}
	// An address (all a file of the versions before networks holds) or
	// a network.
	p, err := ParseBanTarget(ipText)
	if err != nil {
		return BanEntry{}, err
	}
	ban := newBanEntry(p)
	seen := map[string]bool{}
	for {
		rest = strings.TrimLeft(rest, " \t")
		if rest == "" {
			break
		}
		key, after, ok := strings.Cut(rest, "=")
		if !ok || key == "" || strings.ContainsAny(key, " \t\"") {
			return BanEntry{}, fmt.Errorf("expected key=value at %q", rest)
		}
		var val string
		if strings.HasPrefix(after, `"`) {
			q, err := strconv.QuotedPrefix(after)
			if err != nil {
				return BanEntry{}, fmt.Errorf("%s: bad quoted value", key)
			}
			val, _ = strconv.Unquote(q)
			rest = after[len(q):]
			if rest != "" && rest[0] != ' ' && rest[0] != '\t' {
				return BanEntry{}, fmt.Errorf("%s: text after the closing quote", key)
			}
		} else {
			val, rest = after, ""
			if i := strings.IndexAny(after, " \t"); i >= 0 {
				val, rest = after[:i], after[i:]
			}
		}
		if seen[key] {
			return BanEntry{}, fmt.Errorf("%s given twice", key)
		}
		seen[key] = true
		var t *time.Time
		switch key {
		case "until":
			t = &ban.Until
		case "added":
			t = &ban.Added
		case "from":
			t = &ban.From
		case "reason":
			ban.Reason = singleLine(val)
		case "client":
			c, err := netip.ParseAddr(val)
			if err != nil || c.Zone() != "" || !p.Contains(c.Unmap()) {
				return BanEntry{}, fmt.Errorf("client: not an address in %s: %q", banTarget(p), val)
			}
			ban.Client = c.Unmap()
		}
		if t != nil {
			if *t, err = time.Parse(time.RFC3339, val); err != nil || t.UTC().Year() < 1 || t.UTC().Year() > 9999 {
				return BanEntry{}, fmt.Errorf("%s: not an RFC 3339 time: %q", key, val)
			}
			*t = t.UTC()
		}
	}
	if !seen["until"] {
		return BanEntry{}, errors.New("no until=TIME")
	}
	if !seen["from"] {
		ban.From = ban.Added
	}
	return ban, nil
}

// quoteBanValue writes v bare when it can be read back bare, else quoted.
func quoteBanValue(v string) string {
	if v == "" || strings.ContainsFunc(v, func(r rune) bool {
		return r <= ' ' || r == '"' || r == '=' || r == '\\' || r == 0x7f || r == 0xfffd
	}) {
		return strconv.Quote(v)
	}
	return v
}

// singleLine turns control characters into spaces and trims the result, so
// that a reason fits on a line of any of our files.
func singleLine(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// banIP is ip as the ban list keys it: IPv4-mapped addresses as IPv4,
// without zone.
func banIP(ip netip.Addr) netip.Addr {
	return ip.Unmap().WithZone("")
}

func earliestTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func latestTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sameFileVersion reports whether a and b are the same version of a file: same
// inode, size and mtime. Two missing files (nil) are the same.
func sameFileVersion(a, b os.FileInfo) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// flockPath takes an exclusive flock(2) on path, a directory or a file
// (created if missing), waiting for it if another process holds it.
func flockPath(path string) (unlock func(), err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		if f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640); err == nil {
			safefile.DirOwner(filepath.Dir(path)).Chown(f)
		}
	}
	if err != nil {
		return nil, err
	}
	for {
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// ceilSecond rounds t up to a whole second.
func ceilSecond(t time.Time) time.Time {
	if tr := t.Truncate(time.Second); !tr.Equal(t) {
		return tr.Add(time.Second)
	}
	return t
}
