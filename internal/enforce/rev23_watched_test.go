package enforce

import (
	"net"
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
			if err == nil || !strings.Contains(err.Error(), "named pipe") {
				t.Errorf("Reload %d of a named pipe = %v; want it refused as a named pipe", i, err)
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

// TestRev23WatchedUnopenableReportedOnce: a rules file that can be looked
// at but not opened (a socket there; a mode the relay's user cannot read)
// is reported once, as a bad edit is, not again at every look (every five
// seconds on the relay's table timer), until it changes.
func TestRev23WatchedUnopenableReportedOnce(t *testing.T) {
	path, rs, said := reportedRules(t)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 3; i++ {
		if _, err := rs.Reload(); err == nil {
			t.Errorf("Reload %d of a socket: no error", i+1)
		}
	}
	if len(*said) != 1 {
		t.Errorf("reported %d times (%q); want once", len(*said), *said)
	}
	l.Close()
	os.Remove(path)
	mustWrite(t, path, "rule r1\n    action report\n")
	if changed, err := rs.Reload(); !changed || err != nil {
		t.Errorf("Reload of a good file after the socket = %v, %v; want true, nil", changed, err)
	}
	if v := rs.Classify(mustReply(t, "550 5.7.1 no")); v.Action != Report {
		t.Errorf("after the good file: %v; want report", v.Action)
	}
}

// reportedRules loads a rules file that bans, with a report hook that
// collects what it is told.
func reportedRules(t *testing.T) (path string, rs *Rules, said *[]string) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "rules.conf")
	mustWrite(t, path, "rule r1\n    action ban\n")
	rs, err := LoadRules(path)
	if err != nil {
		t.Fatal(err)
	}
	said = new([]string)
	rs.file.report = func(p string, err error) { *said = append(*said, errString(err)) }
	return path, rs, said
}

func mustWrite(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRev23WatchedRemovedSaidOnce: a rules file moved away is said once in
// the log (the rules read before stay in force), and its return too; it
// was said nothing, on the table timer or on SIGHUP, so that an
// administrator whose rules file was deleted never learned that the relay
// still enforced the old rules.
func TestRev23WatchedRemovedSaidOnce(t *testing.T) {
	path, rs, said := reportedRules(t)
	if err := os.Rename(path, path+".away"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := rs.Reload(); err == nil {
			t.Errorf("Reload %d of a removed file: no error", i+1)
		}
	}
	if v := rs.Classify(mustReply(t, "550 5.7.1 no")); v.Action != Ban {
		t.Errorf("after removal: %v; want the rules in force (ban)", v.Action)
	}
	if err := os.Rename(path+".away", path); err != nil {
		t.Fatal(err)
	}
	rs.Reload()
	rs.Reload()
	if len(*said) != 2 || !strings.Contains((*said)[0], "no such file") || (*said)[1] != "ok" {
		t.Errorf("reported %q; want the removal once, then the file back once", *said)
	}
}
