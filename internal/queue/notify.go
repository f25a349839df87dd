package queue

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// PIDFile is the file in the spool directory where the relays running on it
// keep their process ids, one a line, so that queue commands know whom to
// tell about a change. Several relays may share a spool (one receiving and
// one forwarding, or a second one started to try something out); each adds
// itself when it starts and takes itself out when it stops.
const PIDFile = ".relaykeeper.pid"

// WritePID records the calling process as a relay running on s, for Notify;
// RemovePID takes it back when the relay stops. Relays listed that have gone
// meanwhile are dropped.
func WritePID(s *spool.Spool) error {
	return rewritePIDs(s, true)
}

// RemovePID removes the record WritePID made, leaving the other relays'.
func RemovePID(s *spool.Spool) { rewritePIDs(s, false) }

// rewritePIDs writes the pid file anew with the relays that still run,
// other than this process, and this process if add; an empty list removes
// the file. The file is replaced by a rename, so a reader sees either
// version whole.
func rewritePIDs(s *spool.Spool, add bool) error {
	path := filepath.Join(s.Dir(), PIDFile)
	// Relays starting together each read, change and write the list:
	// a lock keeps one from writing over another's entry.
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDONLY|syscall.O_CLOEXEC, 0o644) // flock needs no write access: a lock file another user left stays usable
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return err
	}
	pids, _, err := livePIDs(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var b strings.Builder
	for _, pid := range pids {
		if pid != os.Getpid() {
			fmt.Fprintf(&b, "%d\n", pid)
		}
	}
	if add {
		fmt.Fprintf(&b, "%d\n", os.Getpid())
	}
	if b.Len() == 0 {
		if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	tmp := path + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, []byte(b.String()), 0o644); err != nil {
		os.Remove(tmp) // begun, perhaps, on a full disk
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// livePIDs reads the pid file and returns the processes it lists that still
// run, leaving out a pid whose process started after the file was written
// (a relay that died without taking itself out, its pid since reused:
// SIGHUP would end that other process). bad is the first line that is not a
// process id.
func livePIDs(path string) (pids []int, bad string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	var written time.Time
	if fi, err := os.Stat(path); err == nil {
		written = fi.ModTime()
	}
	for _, line := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(line)
		if err != nil || pid <= 1 {
			if bad == "" {
				bad = line
			}
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			continue
		}
		if start, ok := processStart(pid); ok && !written.IsZero() && start.After(written.Add(2*time.Second)) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids, bad, nil
}

// ErrNoRelay is returned by Notify when no relay runs on the spool.
var ErrNoRelay = errors.New("queue: no relay is running on the spool")

// Notify sends SIGHUP to every relay running on s, each of which then
// re-reads the envelopes and delivers what is due. It returns the pid of
// the relay that started last, or ErrNoRelay when there is no pid file or
// none of the processes it lists runs.
func Notify(s *spool.Spool) (int, error) {
	path := filepath.Join(s.Dir(), PIDFile)
	pids, bad, err := livePIDs(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, ErrNoRelay
	}
	if err != nil {
		return 0, fmt.Errorf("queue: %w", err)
	}
	if len(pids) == 0 && bad != "" {
		return 0, fmt.Errorf("queue: %s: not a process id: %q", path, bad)
	}
	notified, failed := 0, error(nil)
	for _, pid := range pids {
		if err := syscall.Kill(pid, syscall.SIGHUP); err == nil {
			notified = pid
		} else if !errors.Is(err, syscall.ESRCH) && failed == nil {
			failed = fmt.Errorf("queue: signal relay (pid %d): %w", pid, err)
			if notified == 0 {
				notified = pid
			}
		}
	}
	switch {
	case failed != nil:
		return notified, failed
	case notified == 0:
		return 0, ErrNoRelay
	}
	return notified, nil
}

// userHZ is the unit of /proc/PID/stat's times; it is 100 on every Linux
// architecture, whatever the kernel's own tick.
const userHZ = 100

// processStart returns when process pid started, from Linux's /proc; ok is
// false where that cannot be told, and the caller then trusts the pid file.
func processStart(pid int) (time.Time, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return time.Time{}, false
	}
	// The command name, in parentheses, may hold spaces and parentheses;
	// the fields after the last ')' start with field 3 (state), so field
	// 22 (starttime, ticks after boot) is the 20th.
	i := strings.LastIndexByte(string(stat), ')')
	if i < 0 {
		return time.Time{}, false
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 20 {
		return time.Time{}, false
	}
	ticks, err := strconv.ParseInt(f[19], 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	sys, err := os.ReadFile("/proc/stat")
	if err != nil {
		return time.Time{}, false
	}
	for _, line := range strings.Split(string(sys), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			boot, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, false
			}
			return time.Unix(boot, 0).Add(time.Duration(ticks) * time.Second / userHZ), true
		}
	}
	return time.Time{}, false
}
