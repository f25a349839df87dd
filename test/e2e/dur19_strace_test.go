package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// The durability rule (docs/spool.md, "When a message counts as
// accepted"), attacked by system-call fault injection: strace(1) attaches
// to a running relay and makes the Nth call of one system call fail (per
// thread: strace counts per tracee), or kills the relay there. Whatever
// failed, the client hears 250 only for a message that is durable, hears a
// 4xx otherwise, and after a SIGKILL and a restart without faults every
// acknowledged message reaches the upstream whole, once or twice, never
// half and never lost.

// faultCase is one injection: strace's -e inject= argument.
type faultCase struct {
	syscall string // the calls, as strace's set ("fsync,fdatasync")
	action  string // "error=EIO", "signal=KILL"
	when    int
}

func (c faultCase) name() string {
	return fmt.Sprintf("%s_%s_%d", strings.ReplaceAll(c.syscall, ",", "+"), strings.TrimPrefix(strings.TrimPrefix(c.action, "error="), "signal="), c.when)
}

// errno is the injected error's name, "" for a signal.
func (c faultCase) errno() string {
	if e, ok := strings.CutPrefix(c.action, "error="); ok {
		return e
	}
	return ""
}

// dur19Session is what one faulted session sent and heard.
type dur19Session struct {
	sent   map[string]string // tag -> body, every message tried
	acked  map[string]string // tag -> the id in its 250
	codes  map[string]int    // tag -> the last reply's code (0: the connection broke)
	probed bool              // a message after the faults was accepted
}

// attachStrace runs strace on pid with the injection c, logging the
// system calls it traces (with file names and times) to log, and returns
// once every thread of pid is traced.
func attachStrace(t *testing.T, pid int, c faultCase, log string) *exec.Cmd {
	t.Helper()
	trace := "fsync,fdatasync,syncfs,unlinkat," + c.syscall
	cmd := exec.Command("strace", "-f", "-qq", "-ttt", "-y", "-o", log, "-e", "trace="+trace,
		"-e", fmt.Sprintf("inject=%s:%s:when=%d", c.syscall, c.action, c.when), "-p", fmt.Sprint(pid))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("strace: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	if !waitFor(10*time.Second, func() bool { return allTraced(pid) }) {
		t.Fatalf("strace did not attach to every thread of %d", pid)
	}
	return cmd
}

// allTraced says whether every thread of pid has a tracer.
func allTraced(pid int) bool {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, task := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, task.Name()))
		if err != nil {
			return false
		}
		m := regexp.MustCompile(`(?m)^TracerPid:\s+(\d+)`).FindSubmatch(b)
		if m == nil || string(m[1]) == "0" {
			return false
		}
	}
	return true
}

// dur19Body is message i of a session: small ones served from memory, a
// 200 KB one received into a scratch file, and one of 1.2 MB that takes
// the classic path (its own files, fsync, rename, directory fsync).
func dur19Body(tag string, i int) string {
	switch i % 4 {
	case 2:
		return message(tag) + strings.Repeat(strings.Repeat("s", 998)+"\n", 200)
	case 3:
		return message(tag) + strings.Repeat(strings.Repeat("c", 998)+"\n", 1200)
	}
	return message(tag)
}

// dur19Send sends n messages one after the other, then a probe (up to
// three tries) to see that the relay still serves.
func dur19Send(t *testing.T, addr, prefix string, n int, alive func() bool) *dur19Session {
	s := &dur19Session{sent: map[string]string{}, acked: map[string]string{}, codes: map[string]int{}}
	send := func(tag, body string) int {
		s.sent[tag] = body
		tx, err := sendMail(addr, "tagger@example.org", []string{"crash@example.net"}, body)
		code := lastCode(tx)
		switch {
		case err == nil:
			s.acked[tag] = strings.TrimPrefix(strings.Join(tx.Final, ""), "250 2.0.0 OK: queued as ")
		case !errors.Is(err, errRefused):
			code = 0 // the connection broke: nothing heard
		}
		s.codes[tag] = code
		return code
	}
	for i := range n {
		send(fmt.Sprintf("%s-%d", prefix, i), dur19Body(fmt.Sprintf("%s-%d", prefix, i), i))
	}
	for try := range 3 {
		if !alive() {
			break
		}
		if send(fmt.Sprintf("%s-probe%d", prefix, try), message(fmt.Sprintf("%s-probe%d", prefix, try))) == 250 {
			s.probed = true
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s
}

var dur19TagRE = regexp.MustCompile(`(?m)^Subject: (dur19-\S+)\r?$`)

// checkDelivered waits until every acknowledged message of s has reached
// up, then checks that each came whole, at most twice, and that what the
// spool still holds is quarantined.
func checkDelivered(t *testing.T, s *dur19Session, up *harness.FakeSMTP, spool string) {
	t.Helper()
	count := func() (map[string]int, map[string][]byte) {
		n, data := map[string]int{}, map[string][]byte{}
		for _, tx := range up.Transactions() {
			if !tx.Accepted() {
				continue
			}
			if m := dur19TagRE.FindSubmatch(tx.Data); m != nil {
				n[string(m[1])]++
				data[string(m[1])] = tx.Data
			}
		}
		return n, data
	}
	waitFor(15*time.Second, func() bool {
		n, _ := count()
		for tag := range s.acked {
			if n[tag] == 0 {
				return false
			}
		}
		return spoolSettled(spool)
	})
	n, data := count()
	for tag, id := range s.acked {
		switch {
		case n[tag] == 0:
			t.Errorf("%s acknowledged (queued as %s) but never delivered; spool: %v", tag, id, spoolNames(spool))
		case n[tag] > 2:
			t.Errorf("%s delivered %d times", tag, n[tag])
		}
	}
	for tag, k := range n {
		body, ok := s.sent[tag]
		if !ok {
			t.Errorf("%s delivered %d times, but never sent", tag, k)
			continue
		}
		// The relay adds header fields (Received, Date); the body
		// after the header must be the one sent, whole.
		_, want, _ := strings.Cut(strings.ReplaceAll(body, "\n", "\r\n"), "\r\n\r\n")
		_, got, _ := strings.Cut(string(data[tag]), "\r\n\r\n")
		if got != want {
			t.Errorf("%s delivered, but not whole: a body of %d octets, want the %d sent", tag, len(got), len(want))
		}
	}
	if !spoolSettled(spool) {
		t.Errorf("the spool still holds messages after the restart: %v", spoolNames(spool))
	}
}

// spoolSettled says whether the spool holds no message outside the
// quarantine (the running relay's journal segment is no message).
func spoolSettled(spool string) bool {
	for _, n := range spoolNames(spool) {
		if base := filepath.Base(n); strings.HasPrefix(base, ".") || strings.HasSuffix(base, ".tmp") {
			continue // a write cut short: recovery removes it once old (docs/spool.md)
		}
		if strings.Contains(n, ".envelope") || strings.HasSuffix(n, ".content") {
			return false
		}
	}
	return true
}

func spoolNames(spool string) []string {
	var out []string
	for _, d := range []string{spool, filepath.Join(spool, ".journal")} {
		des, _ := os.ReadDir(d)
		for _, de := range des {
			if !de.IsDir() {
				out = append(out, strings.TrimPrefix(filepath.Join(d, de.Name()), spool+"/"))
			}
		}
	}
	return out
}

var (
	straceSyncRE   = regexp.MustCompile(`^\d+\s+[\d.]+\s+(fsync|fdatasync)\(\d+<([^>]+)>\)\s+= (-?\d+)(.*)$`)
	straceUnlinkRE = regexp.MustCompile(`^\d+\s+[\d.]+\s+unlinkat\([^,]+, "([^"]+)", 0`)
)

// checkFsyncgate reads strace's log: after a sync of a file failed, the
// relay must never sync that file again and take its word (a failed fsync
// may have dropped the dirty pages; the next one succeeds over the loss).
func checkFsyncgate(t *testing.T, log string) {
	t.Helper()
	f, err := os.Open(log)
	if err != nil {
		t.Errorf("strace log: %v", err)
		return
	}
	defer f.Close()
	failed := map[string]bool{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	injected := 0
	for sc.Scan() {
		if strings.Contains(sc.Text(), "INJECTED") || strings.Contains(sc.Text(), "+++ killed") {
			if injected++; injected <= 8 {
				line := sc.Text()
				if len(line) > 240 {
					line = line[:160] + " ... " + line[len(line)-70:]
				}
				t.Logf("strace: %s", line)
			}
		}
		if m := straceUnlinkRE.FindStringSubmatch(sc.Text()); m != nil {
			// Removed: a file made later under the name is another
			// (a checkpoint retrying a new segment that failed).
			delete(failed, m[1])
			continue
		}
		m := straceSyncRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		path := m[2]
		if fi, err := os.Stat(path); err == nil && fi.IsDir() {
			continue
		}
		switch {
		case m[3] != "0":
			failed[path] = true
		case failed[path]:
			t.Errorf("%s of %s succeeded after one failed: the relay trusts a retried sync (%s)", m[1], path, sc.Text())
		}
	}
}

// dur19Run is one case: a relay forwarding to up, the faults injected
// while four messages and a probe are sent, a SIGKILL, a restart without
// faults, and the checks.
func dur19Run(t *testing.T, c faultCase) {
	start := time.Now()
	spool := t.TempDir()
	// Each message's first attempt is deferred: the envelope is saved
	// after a deferral, and claimed again, under the faults too.
	var mu sync.Mutex
	tried := map[string]bool{}
	up := harness.NewFakeSMTP(t, harness.Script{Decide: func(stage harness.Stage, tx harness.Transaction, _ string) harness.Response {
		if stage != harness.StageEndOfData {
			return harness.Response{}
		}
		m := dur19TagRE.FindSubmatch(tx.Data)
		if m == nil {
			return harness.Response{}
		}
		mu.Lock()
		defer mu.Unlock()
		if !tried[string(m[1])] {
			tried[string(m[1])] = true
			return harness.Response{Reply: "451 4.3.0 first try deferred"}
		}
		return harness.Response{}
	}})
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--poll", "1", "--config", writeConfig(t, "[smtp]\nshutdown_grace = \"2s\"\n"),
		"--interface", "127.0.0.1", "--spool-dir", spool)
	pid := r.current().PID()
	log := filepath.Join(t.TempDir(), "strace.log")
	if d := os.Getenv("DUR19_KEEP"); d != "" {
		log = filepath.Join(d, c.name()+".log")
	}
	t.Logf("relay up after %v", time.Since(start))
	st := attachStrace(t, pid, c, log)
	t.Logf("traced after %v", time.Since(start))
	s := dur19Send(t, r.addr(), "dur19-"+c.name(), 4, r.current().Running)
	t.Logf("sent after %v", time.Since(start))
	// Give the forwarder, still under the faults, time to defer, retry
	// and remove what it delivered.
	waitFor(3*time.Second, func() bool { return !r.current().Running() || len(up.Transactions()) >= 2*len(s.acked) })
	alive := r.current().Running()
	if alive {
		r.kill()
	} else {
		r.current().Wait(5 * time.Second)
	}
	st.Wait()

	for tag, code := range s.codes {
		switch {
		case code == 250 || code == 0 || code == 421:
			// 421: a read of the client's connection failed, and the
			// session ended saying so.
		case code == 452 && c.errno() != "ENOSPC" && c.errno() != "EDQUOT":
			t.Errorf("%s: the client heard 452 (insufficient storage) after %s; want 451, a local error", tag, c.errno())
		case code == 452 || code == 451:
		default:
			t.Errorf("%s: the client heard %d; want 250, or 451/452 for a fault", tag, code)
		}
	}
	if c.errno() != "" && !s.probed {
		if alive {
			t.Errorf("the relay no longer accepts mail after the fault (%v); stderr:\n%s", s.codes, lastLines(r.stderr(), 40))
		} else if !strings.Contains(r.stderr(), "level=ERROR") && !strings.Contains(r.stderr(), "panic") && !strings.Contains(r.stderr(), "fatal") {
			t.Errorf("the relay exited after the fault without saying why; stderr:\n%s", lastLines(r.stderr(), 40))
		}
	}
	checkFsyncgate(t, log)

	t.Logf("faulted session done after %v", time.Since(start))
	r.restart()
	checkDelivered(t, s, up, spool)
	if t.Failed() {
		t.Logf("codes %v; stderr:\n%s", s.codes, lastLines(r.stderr(), 60))
	}
	t.Logf("checked after %v", time.Since(start))
	r.stop(15 * time.Second)
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func needStrace(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("strace"); err != nil {
		harness.Missing(t, "strace is not installed (run scripts/test-deps.sh)")
	}
	if b, err := os.ReadFile("/proc/sys/kernel/yama/ptrace_scope"); err == nil && strings.TrimSpace(string(b)) == "3" {
		harness.Missing(t, "ptrace is disabled (kernel.yama.ptrace_scope=3)")
	}
}

// TestDur19FaultInjection fails each system call of the accept and
// delivery paths, at its Nth call on a thread, with EIO, ENOSPC, EDQUOT
// or EROFS.
func TestDur19FaultInjection(t *testing.T) {
	t.Parallel()
	needStrace(t)
	errnos := []string{"EIO", "ENOSPC", "EDQUOT", "EROFS"}
	calls := []string{"write", "pwrite64", "fsync", "fdatasync", "renameat,renameat2", "openat", "fallocate", "ftruncate", "unlinkat", "close", "syncfs"}
	var cases []faultCase
	for i, sc := range calls {
		for when := 1; when <= 3; when++ {
			cases = append(cases, faultCase{syscall: sc, action: "error=" + errnos[(i+when)%len(errnos)], when: when})
		}
	}
	for _, c := range dur19Only(cases) {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			dur19Run(t, c)
		})
	}
}

// dur19Only is cases, or the cases in $DUR19_CASES ("SYSCALLS:ERRNO:N ..."),
// for a wider sweep by hand.
func dur19Only(cases []faultCase) []faultCase {
	only := os.Getenv("DUR19_CASES")
	if only == "" {
		return cases
	}
	cases = nil
	for _, f := range strings.Fields(only) {
		p := strings.Split(f, ":")
		if len(p) != 3 {
			continue
		}
		var w int
		fmt.Sscan(p[2], &w)
		cases = append(cases, faultCase{syscall: p[0], action: "error=" + p[1], when: w})
	}
	return cases
}

// TestDur19KillAtSync kills the relay (SIGKILL, injected by strace) at its
// Nth sync or rename on a thread, then checks every acknowledged message.
func TestDur19KillAtSync(t *testing.T) {
	t.Parallel()
	needStrace(t)
	for _, sc := range []string{"fsync", "fdatasync", "renameat,renameat2", "unlinkat"} {
		for when := 1; when <= 3; when++ {
			c := faultCase{syscall: sc, action: "signal=KILL", when: when}
			t.Run(c.name(), func(t *testing.T) {
				t.Parallel()
				dur19Run(t, c)
			})
		}
	}
}

// dur19Replay is one case of the replay under faults: a relay that
// forwards nothing accepts four messages (served from its journal) and is
// killed before its checkpoint; a second relay, started under strace with
// the injection, replays that journal and forwards; it is killed in turn,
// and a third, without faults, must deliver every acknowledged message.
func dur19Replay(t *testing.T, c faultCase) {
	spool := t.TempDir()
	up := harness.NewFakeSMTP(t, harness.Script{})
	cfg := writeConfig(t, "[smtp]\nshutdown_grace = \"2s\"\n")
	store := startRelay(t, "127.0.0.1", "--as-server", "--config", cfg, "--interface", "127.0.0.1", "--spool-dir", spool)
	s := dur19Send(t, store.addr(), "dur19-replay-"+c.name(), 4, func() bool { return false })
	store.kill()
	if len(s.acked) == 0 {
		t.Fatalf("nothing acknowledged before the faults: %v", s.codes)
	}

	log := filepath.Join(t.TempDir(), "strace.log")
	args := []string{"-f", "-qq", "-ttt", "-y", "--seccomp-bpf", "-o", log,
		"-e", "trace=fsync,fdatasync,syncfs,unlinkat," + c.syscall,
		"-e", fmt.Sprintf("inject=%s:%s:when=%d", c.syscall, c.action, c.when),
		"--", harness.Binary(t)}
	relayArgs := []string{"--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--poll", "1", "--config", cfg, "--interface", "127.0.0.1", "--spool-dir", spool}
	traced := &relay{t: t, bin: "strace", args: append(args, relayArgs...), host: "127.0.0.1", port: store.port, spool: spool}
	started := traced.start()
	if started == nil {
		// Let it replay, forward and retire the segment under the faults.
		waitFor(3*time.Second, func() bool { return !traced.current().Running() || len(up.Transactions()) >= len(s.acked) })
		for _, pid := range processTree(traced.current().PID(), 2)[1:] {
			syscall.Kill(pid, syscall.SIGKILL) // the relay under strace
		}
	} else if strings.Contains(started.Error(), "netpollBreak write failed") {
		// strace counts per thread: a new thread's first write can be
		// the Go runtime's own, to its eventfd, which no disk fails;
		// the runtime stops at that. The clean start below still
		// delivers everything.
		t.Logf("the fault hit the Go runtime's eventfd, not the relay's files: %v", started)
	} else if c.errno() != "" && !strings.Contains(started.Error(), "relaykeeper: ") {
		// (A SIGKILL at start says nothing, as it should not.)
		t.Errorf("the relay under faults did not start, without saying why: %v", started)
	} else {
		t.Logf("the relay under faults did not start: %v", started)
	}
	traced.current().Wait(10 * time.Second)
	killSpoolRelays(t, spool)
	checkFsyncgate(t, log)

	clean := &relay{t: t, bin: harness.Binary(t), args: relayArgs, host: "127.0.0.1", port: store.port, spool: spool}
	clean.restart()
	checkDelivered(t, s, up, spool)
	if t.Failed() {
		t.Logf("codes %v; stderr:\n%s\n--- under faults:\n%s\n--- clean:\n%s", s.codes, lastLines(store.stderr(), 20),
			lastLines(traced.stderr(), 40), lastLines(clean.stderr(), 40))
	}
	clean.stop(15 * time.Second)
}

// TestDur19ReplayFaults injects the faults into the start that replays a
// killed relay's journal: every acknowledged message must still come out.
func TestDur19ReplayFaults(t *testing.T) {
	t.Parallel()
	needStrace(t)
	errnos := []string{"EIO", "ENOSPC", "EROFS"}
	calls := []string{"write", "fsync", "syncfs", "renameat,renameat2", "linkat", "openat", "unlinkat", "ftruncate"}
	var cases []faultCase
	for i, sc := range calls {
		for _, when := range []int{1, 2, 4} {
			cases = append(cases, faultCase{syscall: sc, action: "error=" + errnos[(i+when)%len(errnos)], when: when})
		}
	}
	for _, c := range dur19Only(cases) {
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			dur19Replay(t, c)
		})
	}
	for _, when := range []int{1, 2, 3} {
		c := faultCase{syscall: "fsync,syncfs,renameat,linkat", action: "signal=KILL", when: when}
		t.Run(c.name(), func(t *testing.T) {
			t.Parallel()
			dur19Replay(t, c)
		})
	}
}

// TestDur19QueueFaults runs "queue delete --all" and "queue hold --all",
// and "submit", under the faults: each says which messages it could not
// change and exits non-zero then, and every message is left whole (its
// content and one envelope), or gone, or (a delete whose content could
// not be removed after its envelope) an orphan content that the next
// start quarantines, never an envelope without content.
func TestDur19QueueFaults(t *testing.T) {
	t.Parallel()
	needStrace(t)
	bin := harness.Binary(t)
	for _, cmd := range []string{"delete", "hold", "submit"} {
		for _, sc := range []string{"unlinkat", "renameat", "fsync", "write"} {
			for _, when := range []int{1, 2} {
				c := faultCase{syscall: sc, action: "error=EIO", when: when}
				t.Run(cmd+"_"+c.name(), func(t *testing.T) {
					t.Parallel()
					spool := t.TempDir()
					var ids []string
					for i := range 2 {
						out, errOut, code := opsCmd(t, message(fmt.Sprintf("dur19-q%d", i)), "submit", "--spool-dir", spool,
							"-f", "a@example.org", "r@example.net")
						if code != 0 {
							t.Fatalf("submit: %d %s", code, errOut)
						}
						ids = append(ids, strings.TrimSpace(out))
					}
					args := []string{"-f", "-qq", "-o", "/dev/null", "-e", "trace=" + sc,
						"-e", fmt.Sprintf("inject=%s:%s:when=%d", sc, c.action, when), "--", bin}
					stdin := ""
					if cmd == "submit" {
						stdin = message("dur19-q-submitted")
						args = append(args, "submit", "--spool-dir", spool, "-f", "a@example.org", "r@example.net")
					} else {
						args = append(args, "queue", cmd, "--all", "--spool-dir", spool)
					}
					out, errOut, code := runBinary(t, "strace", stdin, args...)
					said := out + errOut
					if cmd == "submit" && code == 0 {
						if id := strings.TrimSpace(out); id != "" {
							ids = append(ids, id)
						}
					}
					// strace counts an injected fault per thread: the
					// write that says a message failed may be some
					// thread's first write, and fail too. Such a message
					// is still counted in the summary's "N of M not done".
					unsaid := 0
					if m := regexp.MustCompile(`(\d+) of \d+ messages not done`).FindStringSubmatch(said); m != nil && sc == "write" {
						fmt.Sscan(m[1], &unsaid)
						unsaid -= strings.Count(said, ": error")
					}
					for _, id := range ids {
						names := map[string]bool{}
						des, _ := os.ReadDir(spool)
						for _, de := range des {
							if rest, ok := strings.CutPrefix(de.Name(), id); ok && !strings.HasSuffix(rest, ".tmp") {
								names[rest] = true
							}
						}
						envs := 0
						for n := range names {
							if strings.HasPrefix(n, ".envelope") {
								envs++
							}
						}
						failed := strings.Contains(said, id+": error")
						needSaid := envs == 0 && names[".content"] || cmd == "delete" && len(names) > 0 ||
							cmd == "hold" && !names[".envelope.held"]
						if !failed && needSaid && unsaid > 0 && code != 0 {
							failed, unsaid = true, unsaid-1
						}
						switch {
						case envs > 1:
							t.Errorf("%s: several envelopes %v", id, names)
						case envs == 1 && !names[".content"]:
							t.Errorf("%s: an envelope without content %v", id, names)
						case envs == 0 && names[".content"] && !failed:
							t.Errorf("%s: content left without envelope, and no error said: %q", id, said)
						case cmd == "delete" && len(names) > 0 && !failed:
							t.Errorf("%s: not deleted, and no error said: %v %q", id, names, said)
						case cmd == "hold" && !names[".envelope.held"] && !failed:
							t.Errorf("%s: not held, and no error said: %v %q", id, names, said)
						}
						if failed && code == 0 {
							t.Errorf("%s: an error said, but the command exited 0: %q", id, said)
						}
					}
					if t.Failed() {
						t.Logf("exit %d: %s", code, said)
					}
				})
			}
		}
	}
}

// TestDur19RecoverUnreadableEnvelope: recovery at start that cannot open
// a message's envelope (EIO, injected by strace on that one path) must not
// take the message for torn and set it aside: it is whole, acknowledged,
// and a read that fails once may work the next time. Quarantined, it
// waited for an administrator's "queue restore", undelivered.
func TestDur19RecoverUnreadableEnvelope(t *testing.T) {
	t.Parallel()
	u := startUnreadableEnvelope(t, "dur19-unreadable", "")
	u.traced.waitEvent("", 10*time.Second, func(e *maillog.Entry) bool { return e.Event == "quarantine" || e.Event == "delivery" })
	time.Sleep(500 * time.Millisecond)
	if _, err := os.Stat(filepath.Join(u.spool, ".quarantine", u.id+".envelope")); err == nil {
		t.Errorf("recovery quarantined %s, whole, because one open of its envelope failed; stderr:\n%s", u.id, lastLines(u.traced.stderr(), 20))
	}
	u.kill()
	clean := &relay{t: t, bin: harness.Binary(t), args: u.relayArgs, host: "127.0.0.1", port: u.traced.port, spool: u.spool}
	clean.restart()
	checkDelivered(t, u.s, u.up, u.spool)
	clean.stop(15 * time.Second)
}

// unreadableEnvelope is a relay started under strace, the first open of
// one acknowledged message's envelope failing with EIO.
type unreadableEnvelope struct {
	s         *dur19Session
	up        *harness.FakeSMTP
	spool, id string
	relayArgs []string
	traced    *relay
}

// startUnreadableEnvelope queues four messages (tag-0 to tag-3) in a
// stopped store, renames the envelope of the large one, tag-3, to
// suffix's state (".busy": a stale claim), and starts a relay forwarding
// to a fake upstream under strace, which fails that envelope's first open.
func startUnreadableEnvelope(t *testing.T, tag, suffix string) *unreadableEnvelope {
	t.Helper()
	needStrace(t)
	u := &unreadableEnvelope{spool: t.TempDir(), up: harness.NewFakeSMTP(t, harness.Script{})}
	cfg := writeConfig(t, "[smtp]\nshutdown_grace = \"2s\"\n")
	store := startRelay(t, "127.0.0.1", "--as-server", "--config", cfg, "--interface", "127.0.0.1", "--spool-dir", u.spool)
	// Over 1 MiB: its own files, an envelope to open at start.
	u.s = dur19Send(t, store.addr(), tag, 4, func() bool { return false })
	store.stop(15 * time.Second)
	for tg, qid := range u.s.acked {
		if strings.HasSuffix(tg, "-3") {
			u.id = qid
		}
	}
	env := filepath.Join(u.spool, u.id+".envelope")
	if err := os.Rename(env, env+suffix); u.id == "" || err != nil {
		t.Fatalf("no envelope of the large message to attack (%q): %v; acked %v", u.id, err, u.s.acked)
	}
	u.relayArgs = []string{"--as-server", "--forward-to", u.up.Addr(), "--forward-on-disconnect",
		"--poll", "1", "--config", cfg, "--interface", "127.0.0.1", "--spool-dir", u.spool}
	args := append([]string{"-f", "-qq", "-o", "/dev/null", "-P", env + suffix, "-e", "trace=openat",
		"-e", "inject=openat:error=EIO:when=1", "--", harness.Binary(t)}, u.relayArgs...)
	u.traced = &relay{t: t, bin: "strace", args: args, host: "127.0.0.1", port: store.port, spool: u.spool}
	u.traced.restart()
	return u
}

// kill ends the traced relay and strace.
func (u *unreadableEnvelope) kill() {
	for _, pid := range processTree(u.traced.current().PID(), 2)[1:] {
		syscall.Kill(pid, syscall.SIGKILL)
	}
	u.traced.current().Wait(10 * time.Second)
}

// killSpoolRelays ends, by PID, the relays that this test started on its
// own spool and that outlived their strace: a relay that began to listen
// only after start() had given up on it was left running when strace,
// ended, let it go (one ran for an hour after the test). They are found
// in the spool's pid file and checked to be relays on that spool.
func killSpoolRelays(t *testing.T, spool string) {
	t.Helper()
	b, _ := os.ReadFile(filepath.Join(spool, ".relaykeeper.pid"))
	for _, f := range strings.Fields(string(b)) {
		pid, err := strconv.Atoi(f)
		if err != nil || pid <= 1 {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err != nil || !strings.Contains(string(cmd), "\x00"+spool+"\x00") {
			continue
		}
		syscall.Kill(pid, syscall.SIGKILL)
		for range 100 {
			if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err != nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
