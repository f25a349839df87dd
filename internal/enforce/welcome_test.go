package enforce

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeWelcome(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	// Move the mtime on, so that a rewrite within one clock tick is seen.
	future := time.Now().Add(time.Duration(len(text)) * time.Millisecond)
	os.Chtimes(path, future, future)
}

func TestWelcomelistFormats(t *testing.T) {
	path := filepath.Join(t.TempDir(), "welcomelist")
	writeWelcome(t, path, `# header
203.0.113.7
   198.51.100.10-198.51.100.20   # indented range with a comment
2001:db8:1::/48
192.0.2.77/24
2001:db8:9::5
  2001:db8:a::1 - 2001:db8:a::ff

^mail[0-9]*\.partner\.example$
\.outbound\.protection\.outlook\.com$
relay\.loose\.example
`)
	w, err := OpenWelcomelist(path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ip, host string
		want     bool
	}{
		{"203.0.113.7", "", true},
		{"::ffff:203.0.113.7", "", true},
		{"203.0.113.8", "", false},
		{"198.51.100.10", "", true},
		{"198.51.100.15", "", true},
		{"198.51.100.20", "", true},
		{"198.51.100.21", "", false},
		{"198.51.100.9", "", false},
		{"2001:db8:1:ffff::1", "", true},
		{"2001:db8:2::1", "", false},
		{"192.0.2.1", "", true}, // host bits in a CIDR block are ignored
		{"192.0.3.1", "", false},
		{"2001:db8:9::5", "", true},
		{"2001:db8:9::6", "", false},
		{"2001:db8:a::80", "", true},
		{"2001:db8:a::100", "", false},
		{"8.8.8.8", "mail7.partner.example", true},
		{"8.8.8.8", "MAIL.Partner.Example.", true},
		{"8.8.8.8", "mail.partner.example.attacker.net", false},
		{"8.8.8.8", "x-mail.partner.example", false},
		{"8.8.8.8", "mail-eopbgr.outbound.protection.outlook.com", true},
		{"8.8.8.8", "relay.loose.example.attacker.net", true}, // unanchored, as egrep
		{"8.8.8.8", "relayxloose.example", false},
		{"8.8.8.8", "", false},
		{"", "mail.partner.example", true},
		{"127.0.0.1", "", false}, // not the default list: the file exists
	}
	for _, tt := range tests {
		var ip netip.Addr
		if tt.ip != "" {
			ip = netip.MustParseAddr(tt.ip)
		}
		if got := w.Welcome(ip, tt.host); got != tt.want {
			t.Errorf("Welcome(%s, %q) = %v; want %v", tt.ip, tt.host, got, tt.want)
		}
	}
}

func TestWelcomelistBadLines(t *testing.T) {
	for _, line := range []string{
		"10.0.0.256",
		"10.0.0.0/33",
		"10.0.0.9-10.0.0.1",
		"10.0.0.1-::1",
		"2001:db8::/129",
		"2001:db8:::1",
		"fe80::1%eth0",
		"1.2.3",
		"(unclosed",
		"a[",
	} {
		_, err := parseWelcomelist("W", "10.0.0.0/8\n\n  "+line+"  # comment\n")
		if err == nil || !strings.HasPrefix(err.Error(), "W:3: ") {
			t.Errorf("parseWelcomelist(%q) error = %v; want W:3: ...", line, err)
		}
	}
}

func TestWelcomelistCreatedAtFirstOpen(t *testing.T) {
	defer func(f func() []netip.Addr) { hostAddrs = f }(hostAddrs)
	hostAddrs = func() []netip.Addr { return nil }
	path := filepath.Join(t.TempDir(), "welcomelist")
	w, err := OpenWelcomelist(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || string(data) != DefaultWelcomelist {
		t.Fatalf("created file = %q, %v; want DefaultWelcomelist", data, err)
	}
	for _, ip := range []string{"127.0.0.1", "127.255.0.3", "::1", "10.1.2.3", "172.16.0.1", "172.31.255.254", "192.168.1.1", "fd00::1", "fc12::9", "169.254.1.1", "fe80::1"} {
		if !w.Welcome(netip.MustParseAddr(ip), "") {
			t.Errorf("Welcome(%s) = false; want true in the default list", ip)
		}
	}
	for _, ip := range []string{"8.8.8.8", "172.32.0.1", "2001:db8::1", "::2", "192.169.0.1"} {
		if w.Welcome(netip.MustParseAddr(ip), "") {
			t.Errorf("Welcome(%s) = true; want false in the default list", ip)
		}
	}
}

func TestWelcomelistExampleFile(t *testing.T) {
	data, err := os.ReadFile("../../etc/welcomelist")
	if err != nil {
		t.Fatal(err)
	}
	e, err := parseWelcomelist("etc/welcomelist", string(data))
	if err != nil {
		t.Fatal(err)
	}
	if !e.welcome(netip.MustParseAddr("192.168.7.7"), "") || e.welcome(netip.MustParseAddr("198.51.100.15"), "") {
		t.Error("etc/welcomelist: want private networks in, commented examples out")
	}
}

func TestWelcomelistReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "welcomelist")
	writeWelcome(t, path, "203.0.113.7\n")
	w, err := OpenWelcomelist(path)
	if err != nil {
		t.Fatal(err)
	}
	a := netip.MustParseAddr("203.0.113.7")
	b := netip.MustParseAddr("203.0.113.8")
	if changed, err := w.Reload(); changed || err != nil {
		t.Errorf("Reload() unchanged = %v, %v; want false, nil", changed, err)
	}

	writeWelcome(t, path, "203.0.113.8\n")
	if changed, err := w.Reload(); !changed || err != nil {
		t.Errorf("Reload() after an edit = %v, %v; want true, nil", changed, err)
	}
	if w.Welcome(a, "") || !w.Welcome(b, "") {
		t.Error("the edit is not in force")
	}

	// A bad line: refused whole, the old list stays, the error comes
	// back on each Reload until the file changes.
	writeWelcome(t, path, "203.0.113.7\n10.0.0.300\n")
	for i := range 2 {
		changed, err := w.Reload()
		if changed || err == nil || !strings.Contains(err.Error(), path+":2: ") {
			t.Errorf("Reload() #%d of a bad file = %v, %v; want false, %s:2: ...", i, changed, err, path)
		}
	}
	if w.Welcome(a, "") || !w.Welcome(b, "") {
		t.Error("a bad file changed the list in force")
	}

	// Welcome notices a change by itself, at most every checkEvery.
	w.file.checkEvery = time.Hour
	writeWelcome(t, path, "203.0.113.7\n# fixed\n")
	if w.Welcome(a, "") {
		t.Error("Welcome reloaded before checkEvery passed")
	}
	w.file.checkEvery = 0
	if !w.Welcome(a, "") || w.Welcome(b, "") {
		t.Error("Welcome did not reload a changed file")
	}
}

func FuzzWelcomelist(f *testing.F) {
	f.Add(DefaultWelcomelist)
	f.Add("203.0.113.7\n  198.51.100.10-198.51.100.20 # c\n2001:db8::/32\n^mx\\.example\\.com$\n")
	f.Add("10.0.0.256\n1.2.3.4-::1\n(\n::ffff:10.0.0.0/104\n")
	f.Add("192.0.2.77/24\n2001:db8:a::1 - 2001:db8:a::ff\nrelay\\.loose\\.example\n# only\n\n")
	f.Fuzz(func(t *testing.T, text string) {
		e, err := parseWelcomelist("f", text)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "f:") {
				t.Fatalf("error %q does not name FILE:LINE", err)
			}
			return
		}
		// Every plain address line is welcome, whatever else the file
		// holds.
		for _, line := range strings.Split(text, "\n") {
			if i := strings.IndexByte(line, '#'); i >= 0 {
				line = line[:i]
			}
			if ip, err := netip.ParseAddr(strings.TrimSpace(line)); err == nil {
				if !e.welcome(ip, "") {
					t.Fatalf("line %q parsed but %s is not welcome", line, ip)
				}
			}
		}
		e.welcome(netip.MustParseAddr("192.0.2.1"), "mail.example.com")
		e.welcome(netip.MustParseAddr("2001:db8::1"), "")
	})
}

// TestWelcomelistMissingDirectoryNamed: the default welcomelist created in
// a directory that does not exist named the temporary file it tried
// (welcomelist.3814168380.tmp), not the directory to make.
func TestWelcomelistMissingDirectoryNamed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "relaykeeper")
	_, err := OpenWelcomelist(filepath.Join(dir, "welcomelist"))
	if err == nil || !strings.Contains(err.Error(), "no directory "+dir) || strings.Contains(err.Error(), ".tmp") {
		t.Errorf("err = %v; want it to name the missing directory %s", err, dir)
	}
}

// TestSeeds24WelcomelistHostAddrs: relay-enforcer's manual says its
// welcomelist "is created at startup containing local ips and all possible
// local-network ips". The one relaykeeper created held loopback and the
// private networks only, so mail that a program on the relay's host sent
// from its public address, refused as spam, banned the relay's own address.
// The created file lists the host's own addresses that the private
// networks do not cover, once each.
func TestSeeds24WelcomelistHostAddrs(t *testing.T) {
	defer func(f func() []netip.Addr) { hostAddrs = f }(hostAddrs)
	own := []string{"127.0.0.1", "::1", "10.0.0.5", "fe80::1", "192.0.2.2", "2001:db8:24::1", "192.0.2.2", "::ffff:198.51.100.1"}
	hostAddrs = func() []netip.Addr {
		var out []netip.Addr
		for _, a := range own {
			out = append(out, netip.MustParseAddr(a))
		}
		return out
	}
	path := filepath.Join(t.TempDir(), "welcomelist")
	w, err := OpenWelcomelist(path)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil || !strings.HasPrefix(string(data), DefaultWelcomelist) || !strings.HasSuffix(string(data), "\n192.0.2.2\n2001:db8:24::1\n198.51.100.1\n") {
		t.Fatalf("created file = %q, %v; want DefaultWelcomelist and the host's public addresses", data, err)
	}
	for _, ip := range []string{"192.0.2.2", "2001:db8:24::1", "198.51.100.1", "10.0.0.5"} {
		if !w.Welcome(netip.MustParseAddr(ip), "") {
			t.Errorf("Welcome(%s) = false; want the host's own address welcomed", ip)
		}
	}
	for _, ip := range []string{"192.0.2.3", "2001:db8:24::2"} {
		if w.Welcome(netip.MustParseAddr(ip), "") {
			t.Errorf("Welcome(%s) = true; want only the host's own addresses", ip)
		}
	}
}
