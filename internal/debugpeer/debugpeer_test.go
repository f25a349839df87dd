package debugpeer

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestList(t *testing.T) {
	if d, err := New(nil, false); d != nil || err != nil {
		t.Errorf("New(nil, false) = %v, %v; want nil, nil: an empty list disables tracing", d, err)
	}
	d, err := New([]string{"192.0.2.0/24", "198.51.100.7", "example.com", ".example.org"}, false)
	if err != nil {
		t.Fatal(err)
	}
	checkList(t, d)
}

func checkList(t *testing.T, d *List) {
	t.Helper()
	for ip, want := range map[string]bool{"192.0.2.9": true, "198.51.100.7": true, "198.51.100.8": false, "::ffff:192.0.2.1": true} {
		if got := d.Client(netip.MustParseAddr(ip)); got != want {
			t.Errorf("Client(%s) = %v; want %v", ip, got, want)
		}
	}
	for addr, want := range map[string]bool{"mx.example.com:25": true, "example.com:587": true, "[192.0.2.1]:25": true,
		"badexample.com:25": false, "smtp.example.org:25": true, "example.net:25": false} {
		if got := d.Upstream(addr); got != want {
			t.Errorf("Upstream(%s) = %v; want %v", addr, got, want)
		}
	}
}

// TestFile: debug_peer_list = /etc/postfix/debug_peer_list, as the Postfix
// local-relay guide writes it, reads the file's entries. Before, the path
// was taken for a host name, and nothing was ever traced.
func TestFile(t *testing.T) {
	f := filepath.Join(t.TempDir(), "debug_peer_list")
	os.WriteFile(f, []byte("# peers to trace\n192.0.2.0/24, 198.51.100.7\n\n  example.com .example.org # and its subdomains\n"), 0o644)
	d, err := New([]string{f}, false)
	if err != nil {
		t.Fatal(err)
	}
	checkList(t, d)
}

// TestErrors: an entry that is not a network, address or name is refused,
// with the file and line it is on, and so is a file that cannot be read.
func TestErrors(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "list")
	os.WriteFile(f, []byte("192.0.2.1\n10.0.0.0/40\n"), 0o644)
	for _, tt := range []struct {
		entries []string
		want    string
	}{
		{[]string{f}, f + `:2: "10.0.0.0/40" is not a network`},
		{[]string{filepath.Join(dir, "missing")}, "no such file or directory"},
		{[]string{"hash:/etc/postfix/debug_peers"}, `"hash:/etc/postfix/debug_peers" is not a network`},
		{[]string{"relative/file"}, `"relative/file" is not a network`},
	} {
		d, err := New(tt.entries, false)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%q, false) = %v, %v; want an error with %q", tt.entries, d, err, tt.want)
		}
	}
}

// FuzzFile: any debug_peer_list file gives a list or an error, never a
// panic; an error about an entry names the file and line.
func FuzzFile(f *testing.F) {
	f.Add("10.0.0.0/8, [192.0.2.1]\n.example.org # comment\n")
	f.Add("hash:/etc/postfix/x\n")
	f.Add("10.0.0.0/40 2001:db8::/200\n")
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(t.TempDir(), "debug_peer_list")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		d, err := New([]string{path}, false)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		if d != nil {
			d.Client(netip.MustParseAddr("192.0.2.1"))
			d.Upstream("mx.example.org:25")
		}
	})
}

// TestEveryone: --verbose traces every client and upstream, and the
// message content only of the clients on the list itself.
func TestEveryone(t *testing.T) {
	d, err := New([]string{"192.0.2.0/24"}, true)
	if err != nil {
		t.Fatal(err)
	}
	listed, other := netip.MustParseAddr("192.0.2.7"), netip.MustParseAddr("198.51.100.1")
	if !d.Client(listed) || !d.Client(other) || !d.Upstream("smtp.example.com:25") || !d.Upstream("[2001:db8::1]:25") {
		t.Errorf("everyone: a client or upstream is not traced")
	}
	if !d.Content(listed) || d.Content(other) {
		t.Errorf("Content(%v) = %v, Content(%v) = %v; want true, false", listed, d.Content(listed), other, d.Content(other))
	}
	if d, _ := New(nil, true); d == nil || !d.Client(other) || d.Content(other) {
		t.Errorf("New(nil, true) = %v; want a list tracing everyone without content", d)
	}
}
