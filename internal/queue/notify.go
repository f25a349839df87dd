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

// PIDFile is the file in the spool directory where a running relay keeps its
// process id, so that queue commands know whom to tell about a change.
const PIDFile = ".relaykeeper.pid"

// WritePID records the calling process as the relay running on s, for
// Notify; RemovePID takes it back when the relay stops.
func WritePID(s *spool.Spool) error {
	return os.WriteFile(filepath.Join(s.Dir(), PIDFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
}

// RemovePID removes the record WritePID made.
func RemovePID(s *spool.Spool) { os.Remove(filepath.Join(s.Dir(), PIDFile)) }

// ErrNoRelay is returned by Notify when no relay runs on the spool.
var ErrNoRelay = errors.New("queue: no relay is running on the spool")

// Notify sends SIGHUP to the relay running on s, which then re-reads the
// envelopes and delivers what is due. It returns the relay's pid, or
// ErrNoRelay when there is no pid file, the process is gone, or the pid file
// is older than the process that now has its pid (a relay that died without
// removing it, its pid since reused: SIGHUP would end that other process).
func Notify(s *spool.Spool) (int, error) {
	path := filepath.Join(s.Dir(), PIDFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, ErrNoRelay
	}
	if err != nil {
		return 0, fmt.Errorf("queue: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("queue: %s: not a process id: %q", path, strings.TrimSpace(string(b)))
	}
	if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
		return 0, ErrNoRelay
	}
	if fi, err := os.Stat(path); err == nil {
		if start, ok := processStart(pid); ok && start.After(fi.ModTime().Add(2*time.Second)) {
			return 0, ErrNoRelay
		}
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		if errors.Is(err, syscall.ESRCH) {
			return 0, ErrNoRelay
		}
		return pid, fmt.Errorf("queue: signal relay (pid %d): %w", pid, err)
	}
	return pid, nil
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
