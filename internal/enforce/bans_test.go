package enforce

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct {
	mu      sync.Mutex
	t       time.Time
	waiters []fakeWaiter // After's channels, fired by Advance
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeWaiter{c.t.Add(d), ch})
	return ch
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.t) {
			w.ch <- c.t
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

func openTestBans(t *testing.T, path string, clock *fakeClock) *Bans {
	t.Helper()
	b, err := OpenBans(path, clock.Now)
	if err != nil {
		t.Fatalf("OpenBans(%s): %v", path, err)
	}
	return b
}

// banCmp compares addresses and times by value.
var banCmp = cmp.Options{
	cmp.Comparer(func(a, b netip.Addr) bool { return a == b }),
	cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) }),
}

var (
	ip1 = netip.MustParseAddr("203.0.113.9")
	ip2 = netip.MustParseAddr("2001:db8::7")
)

func TestBansPersistAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans")
	clock := newFakeClock()
	b := openTestBans(t, path, clock)
	t0 := clock.Now()
	if _, err := b.Add(ip1, 2*time.Hour, "very low reputation (550 5.7.1 ...)"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Add(netip.MustParseAddr("::ffff:198.51.100.4"), 0, ""); err != nil {
		t.Fatal(err)
	}
	b.Delay = 0
	if _, err := b.Add(ip2, time.Hour, `say "hi" = bye`); err != nil {
		t.Fatal(err)
	}
	want := []BanEntry{
		{IP: netip.MustParseAddr("198.51.100.4"), From: t0.Add(DefaultBanDelay), Until: t0.Add(DefaultBanDelay + DefaultBanDuration), Added: t0},
		{IP: ip1, From: t0.Add(DefaultBanDelay), Until: t0.Add(DefaultBanDelay + 2*time.Hour), Reason: "very low reputation (550 5.7.1 ...)", Added: t0},
		// An IPv6 client's ban covers its /64 (V6ban23).
		{IP: netip.MustParseAddr("2001:db8::"), Bits: 64, Client: ip2, From: t0, Until: t0.Add(time.Hour), Reason: `say "hi" = bye`, Added: t0},
	}
	if diff := cmp.Diff(want, b.List(), banCmp); diff != "" {
		t.Errorf("List() mismatch (-want +got):\n%s", diff)
	}
	data, _ := os.ReadFile(path)
	wantFile := bansHeader +
		"198.51.100.4 until=2026-11-22T14:00:10Z added=2026-11-22T10:00:00Z from=2026-11-22T10:00:10Z\n" +
		"203.0.113.9 until=2026-11-22T12:00:10Z reason=\"very low reputation (550 5.7.1 ...)\" added=2026-11-22T10:00:00Z from=2026-11-22T10:00:10Z\n" +
		"2001:db8::/64 until=2026-11-22T11:00:00Z reason=\"say \\\"hi\\\" = bye\" added=2026-11-22T10:00:00Z client=2001:db8::7\n"
	if diff := cmp.Diff(wantFile, string(data)); diff != "" {
		t.Errorf("file mismatch (-want +got):\n%s", diff)
	}

	b2 := openTestBans(t, path, clock)
	if diff := cmp.Diff(want, b2.List(), banCmp); diff != "" {
		t.Errorf("after reopen, List() mismatch (-want +got):\n%s", diff)
	}
	if p := b2.Problems(); len(p) != 0 {
		t.Errorf("Problems() = %v; want none", p)
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 2 {
		t.Errorf("directory holds %d files; want bans and bans.lock, no temporary files", len(entries))
	}
}

func TestBansExpiryAndDelay(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans")
	clock := newFakeClock()
	b := openTestBans(t, path, clock)
	if _, err := b.Add(ip1, time.Hour, "r"); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		advance time.Duration
		want    bool
	}{
		{0, false}, // pending: the reply still goes out
		{DefaultBanDelay - 1, false},
		{1, true},             // From
		{time.Hour - 1, true}, // just before Until
		{1, false},            // Until
	}
	for i, s := range steps {
		clock.Advance(s.advance)
		if _, got := b.Banned(ip1); got != s.want {
			t.Errorf("step %d (%s): Banned = %v; want %v", i, clock.Now().Format(time.RFC3339Nano), got, s.want)
		}
	}
	if got := b.List(); len(got) != 0 {
		t.Errorf("List() after expiry = %v; want none", got)
	}
	// An expired ban is not "removed", and a rewrite drops it.
	if _, err := b.Add(ip2, time.Hour, ""); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if strings.Contains(string(data), ip1.String()) {
		t.Errorf("file still holds the expired ban:\n%s", data)
	}
	if removed, err := b.Remove(ip1); removed || err != nil {
		t.Errorf("Remove(expired) = %v, %v; want false, nil", removed, err)
	}
}

func TestBansExtend(t *testing.T) {
	clock := newFakeClock()
	b := openTestBans(t, filepath.Join(t.TempDir(), "bans"), clock)
	b.Delay = 0
	t0 := clock.Now()
	b.Add(ip1, 4*time.Hour, "first")
	clock.Advance(time.Hour)
	got, err := b.Add(ip1, time.Hour, "second") // ends earlier: no shortening
	if err != nil {
		t.Fatal(err)
	}
	want := BanEntry{IP: ip1, From: t0, Until: t0.Add(4 * time.Hour), Reason: "second", Added: t0}
	if diff := cmp.Diff(want, got, banCmp); diff != "" {
		t.Errorf("Add(shorter) mismatch (-want +got):\n%s", diff)
	}
	got, _ = b.Add(ip1, 5*time.Hour, "third")
	want.Until, want.Reason = t0.Add(6*time.Hour), "third"
	if diff := cmp.Diff(want, got, banCmp); diff != "" {
		t.Errorf("Add(longer) mismatch (-want +got):\n%s", diff)
	}
	if removed, err := b.Remove(ip1); !removed || err != nil {
		t.Errorf("Remove = %v, %v; want true, nil", removed, err)
	}
	if _, banned := b.Banned(ip1); banned {
		t.Error("Banned after Remove")
	}
	if _, err := b.Add(netip.Addr{}, 0, ""); err == nil {
		t.Error("Add(invalid IP) succeeded")
	}
}

func TestBansCorruptLines(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans")
	content := "# comment\n" +
		"203.0.113.9 until=2026-11-22T14:00:00Z reason=ok\n" +
		"not-an-ip until=2026-11-22T14:00:00Z\n" +
		"\n" +
		"198.51.100.1 until=tomorrow\n" +
		"198.51.100.2 reason=\"no until\"\n" +
		"198.51.100.3 until=2026-11-22T14:00:00Z reason=\"unterminated\n" +
		"   2001:db8::1   until=2026-11-22T15:00:00Z   future=ignored\n"
	if err := os.WriteFile(path, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	clock := newFakeClock()
	b := openTestBans(t, path, clock)
	var got []string
	for _, p := range b.Problems() {
		loc, _, _ := strings.Cut(p.Error(), ": ")
		got = append(got, loc)
	}
	want := []string{path + ":3", path + ":5", path + ":6", path + ":7"}
	if diff := cmp.Diff(want, got, banCmp); diff != "" {
		t.Errorf("Problems() locations mismatch (-want +got):\n%s", diff)
	}
	for _, ip := range []string{"203.0.113.9", "2001:db8::1"} {
		if _, banned := b.Banned(netip.MustParseAddr(ip)); !banned {
			t.Errorf("Banned(%s) = false; want true (a good line next to bad ones)", ip)
		}
	}
	// A rewrite keeps the bad lines, commented out, and they are not
	// reported again.
	if _, err := b.Add(ip2, 0, ""); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	if !strings.Contains(string(data), "# bad line: 198.51.100.1 until=tomorrow\n") {
		t.Errorf("rewritten file lost a bad line:\n%s", data)
	}
	b2 := openTestBans(t, path, clock)
	if p := b2.Problems(); len(p) != 0 {
		t.Errorf("after rewrite, Problems() = %v; want none", p)
	}
	b2.Add(ip1, 0, "")
	data2, _ := os.ReadFile(path)
	if got := strings.Count(string(data2), badLinePrefix); got != 4 {
		t.Errorf("second rewrite holds %d bad lines; want 4:\n%s", got, data2)
	}
}

func TestBansReloadAfterExternalEdit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans")
	clock := newFakeClock()
	daemon := openTestBans(t, path, clock)
	command := openTestBans(t, path, clock)
	command.Delay = 0
	if changed, err := daemon.Reload(); changed || err != nil {
		t.Errorf("Reload() with nothing changed = %v, %v; want false, nil", changed, err)
	}
	if _, err := command.Add(ip1, 0, "by hand"); err != nil {
		t.Fatal(err)
	}
	if changed, err := daemon.Reload(); !changed || err != nil {
		t.Errorf("Reload() after the command's add = %v, %v; want true, nil", changed, err)
	}
	if _, banned := daemon.Banned(ip1); !banned {
		t.Error("daemon does not see the command's ban after Reload")
	}
	// The daemon adds without reloading first: the command's edit is
	// merged, not lost.
	command.Remove(ip1)
	daemon.Delay = 0
	if _, err := daemon.Add(ip2, 0, "daemon"); err != nil {
		t.Fatal(err)
	}
	if _, banned := daemon.Banned(ip1); banned {
		t.Error("daemon's Add brought back a ban the command removed")
	}
	command.Reload()
	if _, banned := command.Banned(ip2); !banned {
		t.Error("command does not see the daemon's ban after Reload")
	}
	// A hand edit that only changes the mtime is noticed too.
	os.WriteFile(path, []byte(ip1.String()+" until=2026-11-23T00:00:00Z\n"), 0o640)
	future := time.Now().Add(time.Minute)
	os.Chtimes(path, future, future)
	if changed, _ := daemon.Reload(); !changed {
		t.Error("Reload() missed a hand edit")
	}
	if _, banned := daemon.Banned(ip1); !banned {
		t.Error("hand-written ban not in force")
	}
	// A removed file is an empty list.
	os.Remove(path)
	if changed, err := daemon.Reload(); !changed || err != nil || len(daemon.List()) != 0 {
		t.Errorf("Reload() of a removed file = %v, %v, %d bans; want true, nil, 0", changed, err, len(daemon.List()))
	}
}

func TestBansConcurrent(t *testing.T) {
	clock := newFakeClock()
	b := openTestBans(t, filepath.Join(t.TempDir(), "bans"), clock)
	b.Delay = 0
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 20 {
				ip := netip.AddrFrom4([4]byte{192, 0, 2, byte(g*20 + i)})
				if _, err := b.Add(ip, 0, "concurrent"); err != nil {
					t.Error(err)
				}
				clock.Advance(time.Millisecond)
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 2000 {
				b.Banned(netip.AddrFrom4([4]byte{192, 0, 2, byte(i % 80)}))
				if i%500 == 0 {
					b.Reload()
					b.List()
				}
			}
		}()
	}
	wg.Wait()
	if got := len(b.List()); got != 80 {
		t.Errorf("len(List()) = %d; want 80", got)
	}
	b2 := openTestBans(t, b.Path(), clock)
	if got := len(b2.List()); got != 80 {
		t.Errorf("after reopen len(List()) = %d; want 80", got)
	}
}

func TestBanEntryRoundTrip(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, ban := range []BanEntry{
		{IP: ip1, From: t0, Until: t0.Add(time.Hour), Added: t0},
		{IP: ip2, Until: t0},
		{IP: ip1, From: t0.Add(time.Second), Until: t0.Add(time.Hour), Reason: "tab\there, quote \" é \\", Added: t0},
	} {
		line := formatBan(ban)
		got, err := parseBan(line)
		if err != nil {
			t.Errorf("parseBan(%q): %v", line, err)
			continue
		}
		ban.Reason = singleLine(ban.Reason)
		if diff := cmp.Diff(ban, got, banCmp); diff != "" {
			t.Errorf("parseBan(%q) mismatch (-want +got):\n%s", line, diff)
		}
	}
}

func FuzzBansFile(f *testing.F) {
	f.Add(bansHeader + "203.0.113.9 until=2026-11-22T12:00:10Z reason=\"very low\" added=2026-11-22T10:00:00Z from=2026-11-22T10:00:10Z\n")
	f.Add("2001:db8::7 until=2026-11-22T11:00:00Z reason=\"say \\\"hi\\\"\" added=2026-11-22T10:00:00Z\n")
	f.Add("# bad line: x\nnot-an-ip until=x\n1.2.3.4 until=2026-11-22T11:00:00Z until=2026-11-22T11:00:00Z\n")
	f.Add("1.2.3.4 until=2026-11-22T11:00:00+02:00 reason=bare\n1.2.3.4 until=2027-01-01T00:00:00Z\n")
	f.Add("::ffff:1.2.3.4 until=2026-11-22T11:00:00Z reason=\"\\x00\\n\"\n")
	f.Add("fe80::1%eth0 until=2026-11-22T11:00:00Z\n1.2.3.4 reason=\"a\"b until=2026-11-22T11:00:00Z\n")
	f.Fuzz(func(t *testing.T, text string) {
		// A bad line made only of control characters is reported and
		// not kept; every other bad line is kept.
		bans, bad, _ := parseBans("f", text)
		var list []BanEntry
		for ip, ban := range bans {
			if ip != ban.Network() || ip.Addr() != banIP(ip.Addr()) || ip != ip.Masked() {
				t.Fatalf("map key %v for ban of %v", ip, ban.IP)
			}
			list = append(list, ban)
		}
		out := formatBans(list, bad)
		bans2, bad2, problems2 := parseBans("f", out)
		if len(problems2) != 0 {
			t.Fatalf("formatted file does not parse: %v\n%s", problems2, out)
		}
		if diff := cmp.Diff(bad, bad2); diff != "" {
			t.Fatalf("bad lines changed (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(bans, bans2, banCmp); diff != "" {
			t.Fatalf("round trip mismatch (-want +got):\n%s", diff)
		}
	})
}
