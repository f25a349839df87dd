package harness

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// A private Postfix instance outlives the test process that started it when
// that process dies without running its cleanups: go test's -timeout
// panics the test binary, and SIGKILL gives it no chance at all. The
// master is a daemon, not a child that Pdeathsig could take along, so it
// keeps running and retrying its queue, and disturbs later runs and
// benchmarks. StartPostfix therefore records its test process in each
// instance's directory and, once per test process, sweeps the instances
// whose recorded owner is gone before it starts its own.

// instancePrefix begins the name of every instance's directory under the
// temporary directory.
const instancePrefix = "rkpf-"

// ownerFile, in an instance's directory, names the test process that made
// it: "PID START BOOT", START being the process's start time in clock ticks
// since boot (/proc/PID/stat) and BOOT the kernel's boot id, so that a PID
// reused by another process, or after a reboot, does not pass for the owner.
const ownerFile = "owner"

// legacyAge is how old a directory without an owner record must be before
// it counts as stale: such a directory comes from a harness that did not
// record owners, or from a test process that died between creating it and
// writing the record. It is longer than any -timeout the project's test
// runs use, so that a running test's instance is never taken for stale.
const legacyAge = time.Hour

// owner is the test process that made an instance.
type owner struct {
	proc
	boot string
}

func (o owner) String() string { return fmt.Sprintf("%d %s %s", o.pid, o.start, o.boot) }

// alive reports whether the owner still runs: same boot, and the PID still
// names a process that started when the owner did.
func (o owner) alive() bool { return o.boot == bootID() && o.proc.alive() }

// self is the running test process as an owner.
func self() (owner, error) {
	st, ok := procStat(os.Getpid())
	if !ok {
		return owner{}, errors.New("no /proc/self/stat")
	}
	return owner{proc: proc{pid: os.Getpid(), start: st.start}, boot: bootID()}, nil
}

// bootID returns the kernel's boot id, "" if it cannot be read.
func bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// writeOwner records o as the owner of the instance directory base.
func writeOwner(base string, o owner) error {
	return os.WriteFile(filepath.Join(base, ownerFile), []byte(o.String()+"\n"), 0o644)
}

// readOwner reads the owner of the instance directory base; ok is false
// when there is no well-formed record.
func readOwner(base string) (o owner, ok bool) {
	b, err := os.ReadFile(filepath.Join(base, ownerFile))
	if err != nil {
		return owner{}, false
	}
	f := strings.Fields(string(b))
	if len(f) != 3 {
		return owner{}, false
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil || pid <= 0 {
		return owner{}, false
	}
	return owner{proc: proc{pid: pid, start: f[1]}, boot: f[2]}, true
}

// sweepOnce makes StartPostfix sweep once per test process: stale instances
// come from processes that died before this one started.
var sweepOnce sync.Once

// sweeper stops and removes stale private Postfix instances.
type sweeper struct {
	postfix string        // postfix(1), run as "postfix -c DIR/etc stop"
	grace   time.Duration // how long a master has to stop before it is killed
	logf    func(format string, args ...any)
}

// sweep sweeps every instance directory directly under root.
func (s sweeper) sweep(root string) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return
	}
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), instancePrefix) {
			s.sweepDir(filepath.Join(root, e.Name()))
		}
	}
}

// sweepDir stops and removes the instance in base if it is stale, and
// reports whether it did. An instance is stale when its recorded owner is
// gone, or, without a record, when its directory is older than legacyAge.
// Its master is stopped with the instance's own "postfix -c base/etc stop";
// only when the recorded owner is dead and the master outlives that is it
// killed, by the PID in the instance's own master.pid (and only if that
// process runs in the instance's queue directory). Without a record it is
// never killed: the directory then stays, and the next sweep tries again.
func (s sweeper) sweepDir(base string) bool {
	if b, err := filepath.EvalSymlinks(base); err == nil {
		base = b // the master's /proc/PID/cwd is the resolved path
	}
	st, err := os.Stat(base)
	if err != nil {
		return false
	}
	o, recorded := readOwner(base)
	age := time.Since(st.ModTime())
	if recorded && o.alive() || !recorded && age < legacyAge {
		return false
	}
	// Another test process may be sweeping the same directory: whoever
	// holds the lock on it does, the other leaves it alone.
	d, err := os.Open(base)
	if err != nil {
		return false
	}
	defer d.Close()
	if err := syscall.Flock(int(d.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return false
	}
	if now, err := os.Stat(base); err != nil || !os.SameFile(now, st) {
		return false // swept meanwhile by the process that held the lock
	}
	why := "no owner recorded, made " + age.Round(time.Second).String() + " ago"
	if recorded {
		why = fmt.Sprintf("owner PID %d is gone", o.pid)
	}
	p := &Postfix{bin: s.postfix, base: base, confDir: filepath.Join(base, "etc"), spool: filepath.Join(base, "spool")}
	if master, ok := p.master(); ok {
		if !p.postfixStop(master, s.grace, s.logf) {
			if !recorded {
				s.logf("harness: stale postfix %s (%s): master %d still runs after postfix stop; left alone", base, why, master.pid)
				return false
			}
			s.logf("harness: stale postfix %s (%s): master %d still runs after postfix stop; killing it", base, why, master.pid)
			syscall.Kill(master.pid, syscall.SIGKILL)
			if !master.waitGone(5 * time.Second) {
				s.logf("harness: stale postfix %s: master %d survives SIGKILL; left alone", base, master.pid)
				return false
			}
		}
	}
	if err := os.RemoveAll(base); err != nil {
		s.logf("harness: stale postfix %s: %v", base, err)
		return false
	}
	s.logf("harness: swept stale postfix %s (%s)", base, why)
	return true
}
