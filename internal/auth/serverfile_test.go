package auth

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestServerFileReload: an account removed from the file stops verifying
// after Reload; an unchanged file is not read again unless all; a file
// with a bad line or no server line is refused, with its place, and the
// version in force stays.
func TestServerFileReload(t *testing.T) {
	p := filepath.Join(t.TempDir(), "auth.secrets")
	write := func(text string, age time.Duration) { writeVersion(t, p, text, age) }
	write("server plain alice apw\nserver plain bob bpw\nserver none 192.0.2.0/24 lan\n", 3*time.Hour)
	f, err := OpenServerFile(p, "relay.test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !f.Secrets().Verify("bob", "bpw") || f.Secrets().Domain != "relay.test" {
		t.Fatalf("bob does not verify, or Domain %q", f.Secrets().Domain)
	}
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))

	write("server plain alice apw\n", 2*time.Hour)
	f.Reload(false, log)
	if f.Secrets().Verify("bob", "bpw") || !f.Secrets().Verify("alice", "apw") {
		t.Errorf("after bob's line went: bob verifies %v, alice %v; want false, true", f.Secrets().Verify("bob", "bpw"), f.Secrets().Verify("alice", "apw"))
	}
	if _, ok := f.Trusted(netip.MustParseAddr("192.0.2.9")); ok {
		t.Errorf("192.0.2.9 still trusted after its server none line went")
	}
	if !strings.Contains(logged.String(), "server secrets reloaded") {
		t.Errorf("log %q; want \"server secrets reloaded\"", logged.String())
	}

	logged.Reset()
	f.Reload(false, log)
	if logged.Len() != 0 {
		t.Errorf("an unchanged file was read again: %q", logged.String())
	}
	f.Reload(true, log)
	if !strings.Contains(logged.String(), "server secrets reloaded") {
		t.Errorf("Reload(all) of an unchanged file: log %q; want it read again", logged.String())
	}

	for _, bad := range []struct{ text, want string }{
		{"server plain alice apw\nserver nonsense bob\n", p + ":2:"},
		{"client plain me pw\n", `no \"server\" lines`}, // quoted in the log line
	} {
		logged.Reset()
		write(bad.text, time.Hour)
		f.Reload(false, log)
		if !f.Secrets().Verify("alice", "apw") {
			t.Errorf("after a refused file %q, alice no longer verifies; want the old version in force", bad.text)
		}
		if s := logged.String(); !strings.Contains(s, "server secrets not reloaded") || !strings.Contains(s, bad.want) {
			t.Errorf("log for %q: %q; want \"server secrets not reloaded\" and %q", bad.text, s, bad.want)
		}
	}
	var none *ServerFile
	none.Reload(true, log) // no --server-auth: nothing to do
}

// writeVersion writes text to the secrets file p as a version of its own:
// its modification time is age ago, distinct for each version.
func writeVersion(t *testing.T, p, text string, age time.Duration) {
	t.Helper()
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	mt := time.Now().Add(-age)
	if err := os.Chtimes(p, mt, mt); err != nil {
		t.Fatal(err)
	}
}
