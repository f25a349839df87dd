package companion

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// LockInstance takes the instance lock (an flock on the pid file, which
// then holds this process's pid); another enforcer on the same state holds
// it already unless -r stopped it.
func LockInstance(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, os.ErrNotExist) {
		dir := filepath.Dir(path)
		return nil, fmt.Errorf("cannot create %s: no directory %s (make it, or give --state a file elsewhere)", path, dir)
	}
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		b, _ := io.ReadAll(f)
		f.Close()
		return nil, fmt.Errorf("another postfix-enforcer (pid %s) uses %s; -r replaces it, -s stops it", strings.TrimSpace(string(b)), path)
	}
	f.Truncate(0)
	f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	return func() { f.Close() }, nil
}

// StopOther stops the enforcer that holds the lock at path (-s, -r): it
// sends SIGTERM to the pid in the file, if that process holds the lock and
// is a postfix-enforcer, and waits up to 15 seconds for the lock.
// SIGHUP is caught from here on: a unit's ExecReload in the wait must not
// end the process that replaces the one it stops. Nothing is read yet to
// reload, and Run catches it itself; the catch is left in place so that
// none falls between the two.
func StopOther(path string, stderr io.Writer) error {
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	free := func() bool {
		f, err := os.Open(path)
		if err != nil {
			return true
		}
		defer f.Close()
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil {
			return false
		}
		syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		return true
	}
	if free() {
		fmt.Fprintln(stderr, "relaykeeper postfix-enforcer: no other instance is running")
		return nil
	}
	b, _ := os.ReadFile(path)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("%s is locked but holds no pid", path)
	}
	cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if !bytes.Contains(cmdline, []byte("postfix-enforcer")) {
		return fmt.Errorf("pid %d in %s is not a postfix-enforcer", pid, path)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping pid %d: %w", pid, err)
	}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if free() {
			fmt.Fprintf(stderr, "relaykeeper postfix-enforcer: stopped pid %d\n", pid)
			return nil
		}
	}
	return fmt.Errorf("pid %d did not stop within 15 seconds", pid)
}
