package enforce

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRev23WatchedFIFODoesNotHang: a named pipe put in place of the rules
// file, the reply filter or the welcomelist (mkfifo, a process
// substitution) is refused as no regular file, and the version in force
// stays. It used to be opened for reading, which waits for a writer: with
// the file's lock held, so that every refusal's Classify, every Welcome,
// and the relay's table timer waited too, for ever.
func TestRev23WatchedFIFODoesNotHang(t *testing.T) {
	dir := t.TempDir()
	rulesPath := filepath.Join(dir, "rules.conf")
	wlPath := filepath.Join(dir, "welcomelist")
	mustWrite(t, rulesPath, "rule r1\n    action ban\n")
	mustWrite(t, wlPath, "192.0.2.9\n")
	rs, err := LoadRules(rulesPath)
	if err != nil {
		t.Fatal(err)
	}
	wl, err := OpenWelcomelist(wlPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{rulesPath, wlPath} {
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan [2]error, 1)
	go func() {
		_, e1 := rs.Reload()
		_, e2 := wl.Reload()
		done <- [2]error{e1, e2}
	}()
	select {
	case errs := <-done:
		for i, err := range errs {
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("Reload %d of a named pipe = %v; want not a regular file", i, err)
			}
		}
	case <-time.After(5 * time.Second):
		// Unblock the opens so that the test ends.
		for _, p := range []string{rulesPath, wlPath} {
			if f, err := os.OpenFile(p, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				f.Close()
			}
		}
		t.Fatal("Reload of a named pipe still waiting after 5s")
	}
	if v := rs.Classify(mustReply(t, "550 5.7.1 no")); v.Action != Ban {
		t.Errorf("after a named pipe: %v; want the rules in force (ban)", v.Action)
	}
	if !wl.Welcome(netip.MustParseAddr("192.0.2.9"), "") {
		t.Error("after a named pipe: 192.0.2.9 no longer welcome; want the list in force")
	}
}

func mustWrite(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
