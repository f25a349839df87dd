package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// deadOwner returns an owner record whose process has exited: a child that
// ran and was reaped. Its start time is one no process has, so that the
// record stays dead even if the PID is reused meanwhile.
func deadOwner(t *testing.T) owner {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return owner{proc: proc{pid: cmd.Process.Pid, start: "-1"}, boot: bootID()}
}

func mustSelf(t *testing.T) owner {
	t.Helper()
	me, err := self()
	if err != nil {
		t.Fatal(err)
	}
	return me
}

// fakeInstance makes an instance directory under root with a queue
// directory, the owner record o (none if nil) and the given age.
func fakeInstance(t *testing.T, root, name string, o *owner, age time.Duration) string {
	t.Helper()
	base := filepath.Join(root, name)
	if err := os.MkdirAll(filepath.Join(base, "spool", "pid"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(base, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if o != nil {
		if err := writeOwner(base, *o); err != nil {
			t.Fatal(err)
		}
	}
	then := time.Now().Add(-age)
	if err := os.Chtimes(base, then, then); err != nil {
		t.Fatal(err)
	}
	return base
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

func TestOwnerAlive(t *testing.T) {
	me := mustSelf(t)
	reused := me
	reused.start = "-1"
	otherBoot := me
	otherBoot.boot = "another-boot"
	tests := []struct {
		name string
		o    owner
		want bool
	}{
		{"this process", me, true},
		{"exited", deadOwner(t), false},
		{"PID reused by another process", reused, false},
		{"before a reboot", otherBoot, false},
	}
	for _, tc := range tests {
		if got := tc.o.alive(); got != tc.want {
			t.Errorf("%s: owner{%v}.alive() = %v; want %v", tc.name, tc.o, got, tc.want)
		}
	}
	base := t.TempDir()
	if err := writeOwner(base, me); err != nil {
		t.Fatal(err)
	}
	if got, ok := readOwner(base); !ok || got != me {
		t.Errorf("readOwner after writeOwner(%v) = %v, %v; want it back", me, got, ok)
	}
	for _, bad := range []string{"", "12 34", "x 34 boot", "0 34 boot", "12 34 boot extra"} {
		os.WriteFile(filepath.Join(base, ownerFile), []byte(bad), 0o644)
		if got, ok := readOwner(base); ok {
			t.Errorf("readOwner of %q = %v, true; want no record", bad, got)
		}
	}
}

// TestSweepStale: which instance directories a sweep removes. None has a
// running master, so postfix(1) is never run.
func TestSweepStale(t *testing.T) {
	root := t.TempDir()
	me, dead := mustSelf(t), deadOwner(t)
	reused := me
	reused.start = "-1"
	otherBoot := me
	otherBoot.boot = "another-boot"
	garbled := filepath.Join(root, "rkpf-garbled")
	tests := []struct {
		name  string
		o     *owner
		age   time.Duration
		swept bool
	}{
		{"rkpf-dead", &dead, 0, true},
		{"rkpf-reused", &reused, 0, true},
		{"rkpf-reboot", &otherBoot, 0, true},
		{"rkpf-live", &me, 2 * legacyAge, false},
		{"rkpf-legacy-new", nil, legacyAge - time.Minute, false},
		{"rkpf-legacy-old", nil, legacyAge + time.Minute, true},
		{"rkpf-garbled", nil, 0, false}, // a record half written is no record
		{"other-dead", &dead, 2 * legacyAge, false},
	}
	for _, tc := range tests {
		fakeInstance(t, root, tc.name, tc.o, tc.age)
	}
	os.WriteFile(filepath.Join(garbled, ownerFile), []byte("12"), 0o644)
	os.Chtimes(garbled, time.Now(), time.Now())
	if err := os.WriteFile(filepath.Join(root, "rkpf-file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}

	var logs []string
	s := sweeper{postfix: "/nonexistent/postfix", grace: time.Second, logf: func(f string, a ...any) {
		logs = append(logs, fmt.Sprintf(f, a...))
	}}
	s.sweep(root)
	for _, tc := range tests {
		if gone := !exists(filepath.Join(root, tc.name)); gone != tc.swept {
			t.Errorf("%s: swept %v; want %v", tc.name, gone, tc.swept)
		}
	}
	if !exists(filepath.Join(root, "rkpf-file")) {
		t.Errorf("a file named rkpf-* was removed")
	}
	t.Logf("sweep log:\n%s", strings.Join(logs, "\n"))
	if n := len(logs); n != 4 {
		t.Errorf("the sweep logged %d lines; want one for each of the 4 swept", n)
	}
}

// TestSweepStubbornMaster: a master that outlives "postfix stop" (here a
// process of this test, and a postfix(1) that does nothing) is killed by
// the PID in its instance's master.pid only when the recorded owner is
// dead, and only if that process runs in the instance's queue directory.
func TestSweepStubbornMaster(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	calls := filepath.Join(root, "calls")
	postfix := filepath.Join(root, "postfix")
	script := "#!/bin/sh\necho \"$@\" >> " + calls + "\nexit 1\n"
	if err := os.WriteFile(postfix, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	me, dead := mustSelf(t), deadOwner(t)
	tests := []struct {
		name    string
		o       *owner
		age     time.Duration
		inSpool bool // the process in master.pid runs in the queue directory
		killed  bool
		stopped bool // postfix -c DIR/etc stop was run
		swept   bool
	}{
		{"rkpf-dead", &dead, 0, true, true, true, true},
		{"rkpf-legacy", nil, 2 * legacyAge, true, false, true, false},
		{"rkpf-live", &me, 2 * legacyAge, true, false, false, false},
		// A stale pid file naming some other process: nothing to stop.
		{"rkpf-elsewhere", &dead, 0, false, false, false, true},
	}
	masters := map[string]*Proc{}
	for _, tc := range tests {
		base := fakeInstance(t, root, tc.name, tc.o, tc.age)
		dir := filepath.Join(base, "spool")
		if !tc.inSpool {
			dir = t.TempDir()
		}
		p := StartWith(t, ProcOptions{Env: []string{"HARNESS_HELPER=sleep"}, Dir: dir}, exe)
		masters[tc.name] = p
		pid := fmt.Sprintf("%10d\n", p.PID()) // as Postfix writes it
		if err := os.WriteFile(filepath.Join(base, "spool", "pid", "master.pid"), []byte(pid), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := sweeper{postfix: postfix, grace: 300 * time.Millisecond, logf: t.Logf}
	s.sweep(root)
	ran, _ := os.ReadFile(calls)
	for _, tc := range tests {
		base := filepath.Join(root, tc.name)
		p := masters[tc.name]
		if tc.killed {
			if _, err := p.Wait(5 * time.Second); err == nil || !strings.Contains(err.Error(), "killed by killed") {
				t.Errorf("%s: master: %v; want it killed by SIGKILL", tc.name, err)
			}
		} else if !p.Running() {
			t.Errorf("%s: the master was ended; want it left running", tc.name)
		}
		if stopped := strings.Contains(string(ran), "-c "+base+"/etc stop\n"); stopped != tc.stopped {
			t.Errorf("%s: postfix -c %s/etc stop run %v; want %v (calls:\n%s)", tc.name, base, stopped, tc.stopped, ran)
		}
		if gone := !exists(base); gone != tc.swept {
			t.Errorf("%s: swept %v; want %v", tc.name, gone, tc.swept)
		}
	}
}

// TestSweepRealPostfix: a real instance is left alone while its owner
// lives, and stopped with its own postfix(1) and removed once the owner
// recorded in it is dead.
func TestSweepRealPostfix(t *testing.T) {
	t.Parallel()
	sink := StartSink(t, SinkOptions{})
	pf := StartPostfix(t, PostfixOptions{Relayhost: RelayhostFor(sink.Addr())})
	master, ok := pf.master()
	if !ok {
		t.Fatal("no running master")
	}
	children := childrenOf(master.pid)
	s := sweeper{postfix: pf.bin, grace: 10 * time.Second, logf: t.Logf}
	if s.sweepDir(pf.base) || !master.alive() || !exists(pf.base) {
		t.Fatalf("an instance whose owner lives was swept")
	}
	if err := writeOwner(pf.base, deadOwner(t)); err != nil {
		t.Fatal(err)
	}
	if !s.sweepDir(pf.base) {
		t.Fatalf("an instance whose owner is dead was not swept")
	}
	if master.alive() {
		t.Errorf("master %d still runs after the sweep", master.pid)
	}
	if exists(pf.base) {
		t.Errorf("%s still exists after the sweep", pf.base)
	}
	for _, c := range children {
		if !c.waitGone(5 * time.Second) {
			t.Errorf("the master's child %d still runs after the sweep", c.pid)
		}
	}
}
