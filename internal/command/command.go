// Package command runs external programs (filters, address verifiers) the
// way E-MailRelay does: no shell, a minimal environment, bounded output and
// a timeout that kills the program together with everything it started.
//
// Every program runs in a process group of its own (Setpgid). On timeout,
// or when the caller's context ends, the whole group is sent SIGKILL, so a
// script's children (a "sleep", a pipeline) die with it. Run always waits
// for the program it started, so it leaves no zombie behind, and that wait
// is bounded: if a process that escaped the group still holds the output
// pipes open, they are closed WaitDelay after the program ended.
//
// A program dies with relaykeeper (Pdeathsig): a kill -9 of the relay must
// not leave a filter running, which would edit a message that recovery
// has put back as it was, or a message a new filter run is editing again,
// so that the edit is applied twice. The kernel sends the signal when the
// thread that started the program ends, not the process, so Run keeps its
// goroutine on that thread until the program has ended (golang/go#27505).
// A script's own children do not inherit it: after a kill -9 of the relay
// the script dies and its later steps never run, while a step under way
// (a "sed -i") finishes.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

const (
	// DefaultMaxStdout is how much of a program's standard output Run keeps
	// when Options.MaxStdout is zero; the rest is read and discarded.
	DefaultMaxStdout = 64 << 10
	// DefaultMaxStderr is the same for standard error, which is kept only
	// for logging.
	DefaultMaxStderr = 4 << 10
	// WaitDelay bounds the wait for the output pipes to close once the
	// program has ended or been killed.
	WaitDelay = 2 * time.Second
	// defaultPath is the PATH given to programs when relaykeeper itself has
	// none.
	defaultPath = "/usr/local/bin:/usr/bin:/bin"
	// shell runs a program file that has no "#!" line.
	shell = "/bin/sh"
)

// Options says how Run runs a program. The zero value runs it with stdin
// from /dev/null, the default output caps and no timeout of its own.
type Options struct {
	// Env holds extra "NAME=value" entries. The environment always starts
	// as PATH (relaykeeper's own, or /usr/local/bin:/usr/bin:/bin) and
	// IFS=" \t\n", as in E-MailRelay; an entry here for PATH or IFS
	// replaces it.
	Env []string
	// Stdin is the program's standard input; nil means /dev/null.
	Stdin io.Reader
	// Timeout is how long the program may run. Zero means until ctx ends.
	Timeout time.Duration
	// MaxStdout and MaxStderr cap the captured output in bytes; zero means
	// DefaultMaxStdout and DefaultMaxStderr.
	MaxStdout, MaxStderr int
	// Credential, if not nil, runs the program as another user (E-MailRelay's
	// --user); relaykeeper must be root for that.
	Credential *syscall.Credential
}

// Result is how a program ended.
type Result struct {
	// ExitCode is the program's exit status, or -1 if a signal ended it.
	ExitCode int
	// Stdout and Stderr are the program's output, each cut at its cap.
	Stdout, Stderr string
	// TimedOut reports that Options.Timeout expired and the program was
	// killed; Signaled is then true as well.
	TimedOut bool
	// Signaled reports that a signal ended the program.
	Signaled bool
}

// Run runs argv[0] with the arguments argv[1:], without a shell, and waits
// for it to end. A program name without a slash is looked for in the PATH
// the program gets.
//
// A program that cannot be started is an error that names it. A program
// that runs is not an error, whatever its exit code; a timeout is reported
// in Result.TimedOut. If ctx ends first, the program's process group is
// killed and Run returns the partial Result with ctx's error.
func Run(ctx context.Context, argv []string, opts Options) (Result, error) {
	if len(argv) == 0 || argv[0] == "" {
		return Result{}, errors.New("command: no program given")
	}
	name := argv[0]
	env := environment(opts.Env)
	path, err := findProgram(name, env)
	if err != nil {
		return Result{}, fmt.Errorf("command: cannot run %q: %w", argv[0], err)
	}

	runCtx := ctx
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}

	// Pdeathsig fires when the starting thread ends (package comment):
	// no other goroutine may run on it, and end it, while the program
	// runs.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()

	var cmd *exec.Cmd
	var stdout, stderr *capped
	// ETXTBSY: a program written a moment ago (an administrator's new
	// filter, a test's script) may still be open for writing in a child
	// forked elsewhere in this process; it goes away within milliseconds.
	for try := 0; ; try++ {
		stdout = &capped{max: orDefault(opts.MaxStdout, DefaultMaxStdout)}
		stderr = &capped{max: orDefault(opts.MaxStderr, DefaultMaxStderr)}
		cmd = exec.CommandContext(runCtx, path)
		cmd.Args = argv
		cmd.Env = env
		cmd.Stdin = opts.Stdin
		cmd.Stdout = stdout
		cmd.Stderr = stderr
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: opts.Credential, Pdeathsig: syscall.SIGKILL}
		cmd.WaitDelay = WaitDelay
		cmd.Cancel = func() error {
			// With Setpgid the group's id is the leader's pid.
			err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			if errors.Is(err, syscall.ESRCH) {
				return os.ErrProcessDone
			}
			return err
		}

		err := cmd.Start()
		if err == nil {
			break
		}
		if errors.Is(err, syscall.ETXTBSY) && try < 20 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		// A script without a "#!" line (E-MailRelay's user guide prints
		// its filter scripts so) is run by the shell, as execvp does;
		// a binary the kernel cannot run (another machine's, or
		// truncated), or an empty file, is not a script.
		if errors.Is(err, syscall.ENOEXEC) && path != shell && isScript(path) {
			argv = append([]string{"sh", path}, argv[1:]...)
			path = shell
			continue
		}
		return Result{}, fmt.Errorf("command: cannot run %q: %w", name, err)

	}
	waitErr := cmd.Wait()
	ps := cmd.ProcessState
	if ps == nil {
		// Wait failed before the process was reaped; this does not happen
		// for a process that Start started.
		return Result{}, fmt.Errorf("command: %q: %w", name, waitErr)
	}

	res := Result{ExitCode: ps.ExitCode(), Stdout: stdout.String(), Stderr: stderr.String()}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.Signaled = true
	}
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("command: %q: %w", name, err)
	}
	// A program that exited by itself just as the timer fired did not time
	// out.
	res.TimedOut = runCtx.Err() != nil && res.Signaled
	return res, nil
}

// environment builds E-MailRelay's reduced environment plus extra.
func environment(extra []string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = defaultPath
	}
	env := []string{"PATH=" + path, "IFS= \t\n"}
	env = append(env, extra...)
	// Later entries win, as in os/exec; keep only the last of each name so
	// that PATH lookups below see what the program will see.
	seen := make(map[string]bool, len(env))
	out := make([]string, 0, len(env))
	for i := len(env) - 1; i >= 0; i-- {
		name, _, _ := strings.Cut(env[i], "=")
		if seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, env[i])
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// findProgram resolves a program name without a slash through the PATH in
// env, as execvp would; a name with a slash is used as it is.
func findProgram(name string, env []string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	var path string
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			if !filepath.IsAbs(p) {
				p = "./" + p
			}
			return p, nil
		}
	}
	return "", fmt.Errorf("not found in PATH: %w", fs.ErrNotExist)
}

// isScript reports whether the file at path reads as text a shell can run:
// not empty, and no NUL octet in its first block, as bash checks before it
// runs a file without "#!". The shell would read a binary's octets as
// commands, and its syntax error, an exit code, as the program's verdict
// (a filter's exit 2 refuses the message for good), where the program
// never ran.
func isScript(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, 512)
	n, _ := io.ReadFull(f, buf)
	return n > 0 && !bytes.Contains(buf[:n], []byte{0})
}

func orDefault(n, def int) int {
	if n <= 0 {
		return def
	}
	return n
}

// capped keeps the first max bytes written to it and discards the rest.
// os/exec writes to it from one goroutine and Run reads it after Wait.
type capped struct {
	buf []byte
	max int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - len(c.buf); room > 0 {
		c.buf = append(c.buf, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (c *capped) String() string { return string(c.buf) }

// CheckExecutable refuses a program that cannot be run (a filter, an
// address verifier), so that a typing error shows when the configuration
// is loaded rather than as a 4xx on every message.
func CheckExecutable(name string) error {
	if !strings.Contains(name, "/") {
		_, err := exec.LookPath(name)
		return err
	}
	fi, err := os.Stat(name)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() || fi.Mode()&0o111 == 0 {
		return fmt.Errorf("%s is not an executable file", name)
	}
	return nil
}
