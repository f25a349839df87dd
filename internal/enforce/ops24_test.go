package enforce

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// docs/operations.md: "%d in the name is the date (YYYYMMDD) and %h the
// hour (HH) ... (the same holds for [log] mail_log and the ban log)". The
// ban log was opened by its name as written: ban_log =
// "/var/log/relaykeeper/bans-%d.log" made a file literally called
// "bans-%d.log", which a jail's logpath for the dated files never read.
func TestOps24BanLogDatedName(t *testing.T) {
	dir := t.TempDir()
	day1 := time.Date(2026, 11, 22, 23, 59, 0, 0, time.Local)
	now := day1
	fb := &FileBans{Path: filepath.Join(dir, "bans-%d-%h.log"), Host: "relay", Now: func() time.Time { return now }}
	if err := fb.Check(); err != nil {
		t.Fatal(err)
	}
	if err := fb.WriteBan("bannable rule: 550 x 192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	now = day1.Add(2 * time.Minute)
	if err := fb.WriteBan("bannable rule: 550 x 192.0.2.2"); err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	for _, want := range []string{"bans-20261122-23.log", "bans-20261123-00.log"} {
		b, err := os.ReadFile(filepath.Join(dir, want))
		if err != nil || len(b) == 0 {
			t.Errorf("%s: %v, %d bytes; files: %q", want, err, len(b), names)
		}
	}
	if len(names) != 2 {
		t.Errorf("files %q; want the two dated ones only", names)
	}
}

// docs/operations.md has the administrator run "relaykeeper --check" with
// the unit's switches, as root, before a restart: "run as root, a log file
// it creates belongs to its directory's owner ... so that the relay can
// still open it". --check made the ban log ([enforce] ban_log) root's,
// 0640, and the spool's enforcer directory (.enforce, with sender_access
// and the welcomelist) root's, 0750: the relay, running as its own user,
// then refused to start ("enforce.ban_log: ... permission denied",
// "enforce.bans: ... .enforce/bans: permission denied").
func TestOps24CheckAsRootLeavesEnforcerFilesToTheRelay(t *testing.T) {
	if os.Geteuid() != 0 {
		harness.Missing(t, "root, to create files in another user's directory")
	}
	base := t.TempDir()
	spoolDir, logs := filepath.Join(base, "spool"), filepath.Join(base, "logs")
	for _, d := range []string{spoolDir, logs} {
		if err := os.Mkdir(d, 0o750); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(d, 4321, 4322); err != nil {
			t.Fatal(err)
		}
	}
	files, err := Files{}.Prepare(spoolDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := OpenWelcomelist(files.Welcomelist); err != nil {
		t.Fatal(err)
	}
	if err := (&FileBans{Path: filepath.Join(logs, "bans.log")}).Check(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{StateDir(spoolDir), files.SenderAccess, files.Welcomelist, filepath.Join(logs, "bans.log")} {
		var st syscall.Stat_t
		if err := syscall.Stat(p, &st); err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		if st.Uid != 4321 || st.Gid != 4322 {
			t.Errorf("%s owned by %d:%d; want the relay's 4321:4322, its directory's owner", p, st.Uid, st.Gid)
		}
	}
}
