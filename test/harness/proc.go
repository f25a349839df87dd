package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago: it
// listens on port 0, notes the port and closes the listener. Another process
// may take the port before the caller does; callers that start a server on
// it should be ready to retry.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := freePort()
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return p
}

func freePort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitPort waits until something listens on addr ("127.0.0.1:2525") and
// fails the test after timeout. On Linux it looks for the listening socket in
// /proc/net/tcp instead of connecting, so the server sees no stray probe
// session (which would show up in a mail log); elsewhere it connects.
func WaitPort(t testing.TB, addr string, timeout time.Duration) {
	t.Helper()
	if err := waitPort(addr, timeout, nil); err != nil {
		t.Fatalf("harness: %v", err)
	}
}

// waitPort polls until addr listens, timeout passes, or exited is closed.
func waitPort(addr string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, err := listening(addr)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %v", addr, timeout)
		}
		select {
		case <-exited:
			return fmt.Errorf("process exited before listening on %s", addr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// listening reports whether a TCP socket listens on addr.
func listening(addr string) (bool, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("bad address %q: %w", addr, err)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return false, fmt.Errorf("bad port in %q: %w", addr, err)
	}
	ip := net.ParseIP(host).To4()
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil || ip == nil {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, nil
		}
		c.Close()
		return true, nil
	}
	return procNetListens(data, ip, port), nil
}

// procNetListens reports whether the /proc/net/tcp table data has a socket
// in state LISTEN (0A) on ip:port or on 0.0.0.0:port. The table prints each
// address as a host-order 32-bit number in hex followed by the port.
func procNetListens(data []byte, ip net.IP, port int) bool {
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || f[3] != "0A" {
			continue
		}
		a, p, ok := strings.Cut(f[1], ":")
		if !ok || len(a) != 8 {
			continue
		}
		if pn, err := strconv.ParseUint(p, 16, 16); err != nil || int(pn) != port {
			continue
		}
		raw, err := hex.DecodeString(a)
		if err != nil {
			continue
		}
		got := make(net.IP, 4)
		binary.NativeEndian.PutUint32(got, binary.BigEndian.Uint32(raw))
		if got.Equal(ip) || got.Equal(net.IPv4zero) {
			return true
		}
	}
	return false
}

// lookPath finds an installed program, also in the sbin directories that a
// non-root PATH on Debian leaves out.
func lookPath(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found in $PATH or sbin", name)
}

// Need returns the path of an installed program, or skips the test
// (fails it under CI) when it is missing: for peers the harness has no
// helper of its own for.
func Need(t testing.TB, name string) string {
	t.Helper()
	return need(t, name)
}

// need returns the path of an installed program, or skips the test
// (fails it under CI) when it is missing.
func need(t testing.TB, name string) string {
	t.Helper()
	p, err := lookPath(name)
	if err != nil {
		Missing(t, "harness: %s is not installed (run scripts/test-deps.sh)", name)
	}
	return p
}

// Missing skips a test for want of something the machine must provide, or
// fails it when $CI is "true": there scripts/test-deps.sh has installed
// every peer, so a missing one is a broken set-up, never a pass.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf(format+" (CI=true: a missing peer fails the test)", args...)
		return
	}
	t.Skipf(format, args...)
}

var build struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// Binary returns the path of the relaykeeper binary. If $RELAYKEEPER_BIN is
// set it is used as is; otherwise ./cmd/relaykeeper is built once per test
// process (with -race when the test binary has it) into a temporary
// directory that Main removes.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("RELAYKEEPER_BIN"); p != "" {
		return p
	}
	build.once.Do(func() {
		build.path, build.err = buildBinary()
	})
	if build.err != nil {
		t.Fatalf("harness: %v", build.err)
	}
	return build.path
}

func buildBinary() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build relaykeeper: %w", err)
	}
	build.dir, err = os.MkdirTemp("", "relaykeeper-bin-")
	if err != nil {
		return "", fmt.Errorf("build relaykeeper: %w", err)
	}
	out := filepath.Join(build.dir, "relaykeeper")
	args := []string{"build", "-o", out}
	if raceEnabled() {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/relaykeeper")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return out, nil
}

// moduleRoot walks up from the working directory to the one with go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("module root: no go.mod above the working directory")
		}
		dir = parent
	}
}

func raceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// Main runs the tests of a package and then removes what the harness left
// for the whole process (the binary built by Binary). Call it from TestMain:
//
//	func TestMain(m *testing.M) { harness.Main(m) }
func Main(m *testing.M) {
	// A test that changed the shared temporary directory's mode (a
	// chmod loop that walked one directory too far) broke every later
	// peer that drops privileges there (spamd: "cannot create temp
	// directory"), in this run and the next: the run fails, naming it.
	tmp := filepath.Clean(os.TempDir())
	before, berr := os.Stat(tmp)
	code := m.Run()
	if after, err := os.Stat(tmp); berr == nil && err == nil && after.Mode() != before.Mode() {
		fmt.Fprintf(os.Stderr, "harness: a test changed %s from %v to %v; restored\n", tmp, before.Mode(), after.Mode())
		os.Chmod(tmp, before.Mode()) // the sticky bit included
		code = 1
	}
	if build.dir != "" {
		os.RemoveAll(build.dir)
	}
	os.Exit(code)
}

// ProcOptions are the optional settings of StartWith.
type ProcOptions struct {
	// Env holds extra KEY=VALUE pairs, added to the test's environment.
	Env []string
	// Dir is the working directory; empty means the test's.
	Dir string
	// WaitAddr, if set, makes StartWith return only once something listens
	// on this address, and fail the test if the process exits first.
	WaitAddr string
	// WaitTimeout bounds the wait for WaitAddr; default 10s.
	WaitTimeout time.Duration
}

// Proc is a process started by Start. Its methods are safe for concurrent
// use.
type Proc struct {
	t      testing.TB
	name   string
	cmd    *exec.Cmd
	outDir string
	done   chan struct{} // closed when the process has been reaped
	state  *os.ProcessState
	err    error // from cmd.Wait, set before done is closed
}

// Start starts bin with args, output captured, and kills it at the end of
// the test if it still runs.
func Start(t testing.TB, bin string, args ...string) *Proc {
	t.Helper()
	return StartWith(t, ProcOptions{}, bin, args...)
}

// StartWith is Start with options.
func StartWith(t testing.TB, opts ProcOptions, bin string, args ...string) *Proc {
	t.Helper()
	p, err := startProc(t, opts, bin, args...)
	if err != nil {
		t.Fatalf("harness: %v", err)
	}
	return p
}

func startProc(t testing.TB, opts ProcOptions, bin string, args ...string) (*Proc, error) {
	outDir, err := os.MkdirTemp(t.TempDir(), "proc-")
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	stdout, err := os.Create(filepath.Join(outDir, "stdout"))
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	defer stdout.Close()
	stderr, err := os.Create(filepath.Join(outDir, "stderr"))
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	defer stderr.Close()

	cmd := exec.Command(bin, args...)
	cmd.Dir = opts.Dir
	cmd.Env = append(os.Environ(), opts.Env...)
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	// The child dies with the test process, even if that crashes or times
	// out before the cleanups run.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	p := &Proc{t: t, name: filepath.Base(bin), cmd: cmd, outDir: outDir, done: make(chan struct{})}
	go func() {
		// Exits when the process does; Cleanup makes sure it does.
		p.err = cmd.Wait()
		p.state = cmd.ProcessState
		close(p.done)
	}()
	t.Cleanup(p.cleanup)

	if opts.WaitAddr != "" {
		timeout := opts.WaitTimeout
		if timeout == 0 {
			timeout = 10 * time.Second
		}
		if err := waitPort(opts.WaitAddr, timeout, p.done); err != nil {
			p.Kill()
			p.Wait(5 * time.Second)
			return nil, fmt.Errorf("%s (pid %d): %w\nstderr:\n%s", p.name, p.PID(), err, p.Stderr())
		}
	}
	return p, nil
}

func (p *Proc) cleanup() {
	if p.Running() {
		p.Kill()
		if p.Wait(10 * time.Second); p.Running() {
			p.t.Logf("harness: %s (pid %d) still running 10s after SIGKILL", p.name, p.PID())
		}
	}
	if p.t.Failed() {
		p.t.Logf("harness: %s (pid %d) stdout:\n%s", p.name, p.PID(), tail(p.Stdout(), 64<<10))
		p.t.Logf("harness: %s (pid %d) stderr:\n%s", p.name, p.PID(), tail(p.Stderr(), 64<<10))
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "[...]" + s[len(s)-n:]
}

// PID returns the process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Running reports whether the process has not yet exited.
func (p *Proc) Running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Signal sends sig to the process. Signalling a process that has exited is
// not an error.
func (p *Proc) Signal(sig os.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("harness: signal %v to %s (pid %d): %v", sig, p.name, p.PID(), err)
	}
}

// Kill sends SIGKILL to the process.
func (p *Proc) Kill() { p.Signal(syscall.SIGKILL) }

// Wait waits up to timeout for the process to exit and returns its exit code.
// A process killed by a signal returns -1 and an error naming the signal; a
// process still running after timeout returns -1 and an error.
func (p *Proc) Wait(timeout time.Duration) (exitCode int, err error) {
	select {
	case <-p.done:
	case <-time.After(timeout):
		return -1, fmt.Errorf("harness: %s (pid %d) still running after %v", p.name, p.PID(), timeout)
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, fmt.Errorf("harness: %s (pid %d) killed by %v", p.name, p.PID(), ws.Signal())
	}
	return p.state.ExitCode(), nil
}

// Stdout returns what the process has written to stdout so far.
func (p *Proc) Stdout() string { return p.readOut("stdout") }

// Stderr returns what the process has written to stderr so far.
func (p *Proc) Stderr() string { return p.readOut("stderr") }

func (p *Proc) readOut(name string) string {
	b, err := os.ReadFile(filepath.Join(p.outDir, name))
	if err != nil {
		return fmt.Sprintf("(harness: %v)", err)
	}
	return string(b)
}

var errTimeout = errors.New("killed: still running")

// runTimeout runs a short-lived command to completion, bounded by timeout,
// and returns its combined output and exit code (-1 if it did not exit by
// itself).
func runTimeout(timeout time.Duration, env []string, name string, args ...string) (string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	cmd.WaitDelay = 5 * time.Second // a loaded machine may take a second to drain the pipes
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), -1, fmt.Errorf("%s: %w after %v", filepath.Base(name), errTimeout, timeout)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode(), err
	}
	if err != nil {
		return string(out), -1, err
	}
	return string(out), 0, nil
}
