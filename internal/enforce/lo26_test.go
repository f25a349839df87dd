package enforce

import (
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestLo26WelcomelistHalfWritten: a writer that truncates the welcomelist
// and then writes it (a configuration tool, "cat >", tee) shows a shorter
// list for a moment, one that ends on a line boundary when it writes line
// by line. A look then put the shorter list in force: 192.0.2.1, whose
// line was not yet written, lost its exemption, and a refusal of its mail
// in the next seconds banned it. A new version is now put in force only
// once it has been left alone for settleTime: a look before that keeps
// the list in force, and Reload (SIGHUP) waits for the writer to finish.
func TestLo26WelcomelistHalfWritten(t *testing.T) {
	path := filepath.Join(t.TempDir(), "welcomelist")
	writeWelcome(t, path, "10.0.0.0/8\n192.0.2.1\n")
	old := time.Now().Add(-time.Minute)
	os.Chtimes(path, old, old)
	w, err := OpenWelcomelist(path)
	if err != nil {
		t.Fatal(err)
	}
	w.file.checkEvery = 0 // every use looks at the file
	late := netip.MustParseAddr("192.0.2.1")

	// The writer has written its first line.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteString("10.0.0.0/8\n")
	if !w.Welcome(late, "") {
		t.Errorf("Welcome(%s) = false while the file is half written; want the list in force", late)
	}
	// SIGHUP now: Reload waits for the writer's second line.
	done := make(chan struct{})
	go func() {
		time.Sleep(300 * time.Millisecond)
		f.WriteString("192.0.2.1\n198.51.100.7\n")
		close(done)
	}()
	changed, err := w.Reload()
	<-done
	if !changed || err != nil {
		t.Errorf("Reload() = %v, %v; want true, nil", changed, err)
	}
	for _, a := range []string{"10.1.2.3", "192.0.2.1", "198.51.100.7"} {
		if !w.Welcome(netip.MustParseAddr(a), "") {
			t.Errorf("after Reload: Welcome(%s) = false; want the whole file in force", a)
		}
	}
}

// TestLo26HoldPendingOwnedAsBans: a relay run by hand as root wrote
// .enforce/hold-pending 0600 and root's, beside a ban file it gives the
// directory's owner: the relay run again as its own user (systemd's
// User=) could not read it, and held nothing of what a crash left in
// flight. The file now gets the ban file's mode (0640) and owner.
func TestLo26HoldPendingOwnedAsBans(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to make a file another user's")
	}
	dir := filepath.Join(t.TempDir(), ".enforce")
	if err := os.Mkdir(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	const uid, gid = 65534, 65534
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	bans, err := OpenBans(filepath.Join(dir, "bans"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	e := &Enforcer{Bans: bans}
	e.banMu.Lock()
	e.holdPending = map[string]netip.Addr{"0123456789ABCDEF": netip.MustParseAddr("192.0.2.7")}
	e.savePendingLocked()
	e.banMu.Unlock()
	fi, err := os.Stat(e.pendingFile())
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Uid != uid || st.Gid != gid || fi.Mode().Perm() != 0o640 {
		t.Errorf("hold-pending: owner %d:%d, mode %v; want %d:%d, 0640 (as the ban file)", st.Uid, st.Gid, fi.Mode().Perm(), uid, gid)
	}
}

// TestLo26WelcomeNotBlockedWhileSettling: Reload (SIGHUP, and the rules
// file's reload timer) waits for a file being written to settle; it held
// the file's lock meanwhile, so every use of the list in force (an
// enforcement decision) waited up to the settle time with it.
func TestLo26WelcomeNotBlockedWhileSettling(t *testing.T) {
	path := filepath.Join(t.TempDir(), "welcomelist")
	writeWelcome(t, path, "10.0.0.0/8\n")
	old := time.Now().Add(-time.Minute)
	os.Chtimes(path, old, old)
	w, err := OpenWelcomelist(path)
	if err != nil {
		t.Fatal(err)
	}
	w.file.checkEvery = time.Hour // uses look at nothing
	if err := os.WriteFile(path, []byte("10.0.0.0/8\n192.0.2.1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { w.Reload(); close(done) }()
	time.Sleep(100 * time.Millisecond) // Reload is waiting now
	start := time.Now()
	w.Welcome(netip.MustParseAddr("10.1.2.3"), "")
	if took := time.Since(start); took > 300*time.Millisecond {
		t.Errorf("Welcome took %v while Reload waited for the file; want at once", took)
	}
	<-done
}
