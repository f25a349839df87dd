package command

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// script writes an executable shell script into a fresh directory and
// returns its path.
func script(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSplit(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"/usr/bin/spamassassin --exit-code", []string{"/usr/bin/spamassassin", "--exit-code"}},
		{"  a\t b  ", []string{"a", "b"}},
		{`c:/Program\ Files/x.bat arg`, []string{"c:/Program Files/x.bat", "arg"}},
		{`"/opt/my filters/f" "two words" x`, []string{"/opt/my filters/f", "two words", "x"}},
		{`a "b c"d e`, []string{"a", "b cd", "e"}},
		{`a "" b`, []string{"a", "", "b"}},
		{`a "say \"hi\""`, []string{"a", `say "hi"`}},
		{`a \\b`, []string{"a", `\b`}},
		{`a b\`, []string{"a", `b\`}},
		{`a "unterminated b`, []string{"a", "unterminated b"}},
		{`it's`, []string{"it's"}},
	}
	for _, tt := range tests {
		got, err := Split(tt.in)
		if err != nil {
			t.Errorf("Split(%q) error: %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Split(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
	for _, in := range []string{"", "   ", "\t\n", `"" a`} {
		if got, err := Split(in); err == nil {
			t.Errorf("Split(%q) = %q; want an error", in, got)
		}
	}
}

func TestRunExitCodes(t *testing.T) {
	p := script(t, "exit.sh", `echo "out $1"; echo "err $1" >&2; exit "$1"`)
	for _, code := range []int{0, 1, 2, 3, 99, 100, 101, 255} {
		res, err := Run(context.Background(), []string{p, strconv.Itoa(code)}, Options{Timeout: 10 * time.Second})
		if err != nil {
			t.Fatalf("Run(exit %d): %v", code, err)
		}
		want := Result{ExitCode: code, Stdout: "out " + strconv.Itoa(code) + "\n", Stderr: "err " + strconv.Itoa(code) + "\n"}
		if diff := cmp.Diff(want, res); diff != "" {
			t.Errorf("Run(exit %d) mismatch (-want +got):\n%s", code, diff)
		}
	}
}

func TestRunArgsWithSpaces(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "Program Files")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "args.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nfor a; do echo \"[$a]\"; done\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := strings.ReplaceAll(p, " ", `\ `) + ` "two words" 'single' *`
	argv, err := Split(spec)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), argv, Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	// No shell: no globbing of "*", no quote removal of 'single'.
	if want := "[two words]\n['single']\n[*]\n"; res.Stdout != want {
		t.Errorf("Run(%q) stdout = %q; want %q", spec, res.Stdout, want)
	}
}

func TestRunOutputCap(t *testing.T) {
	// 200 KiB of output: the cap keeps the start, the rest is drained so
	// the program is not blocked on a full pipe.
	p := script(t, "big.sh", `head -c 204800 /dev/zero | tr '\0' x; head -c 10000 /dev/zero | tr '\0' e >&2; exit 7`)
	res, err := Run(context.Background(), []string{p}, Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.ExitCode != 7 || len(res.Stdout) != DefaultMaxStdout || len(res.Stderr) != DefaultMaxStderr {
		t.Errorf("Run = exit %d, %d bytes out, %d bytes err; want 7, %d, %d",
			res.ExitCode, len(res.Stdout), len(res.Stderr), DefaultMaxStdout, DefaultMaxStderr)
	}
	res, err = Run(context.Background(), []string{p}, Options{MaxStdout: 10, MaxStderr: 3})
	if err != nil {
		t.Fatal(err)
	}
	if res.Stdout != "xxxxxxxxxx" || res.Stderr != "eee" {
		t.Errorf("Run with caps 10, 3 = %q, %q; want 10 x and 3 e", res.Stdout, res.Stderr)
	}
}

func TestRunTimeoutKillsGroup(t *testing.T) {
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	// The script starts a child that would outlive it, writes the child's
	// pid, and waits.
	p := script(t, "slow.sh", `sleep 60 & echo $! > "$1"; echo started; wait`)
	start := time.Now()
	res, err := Run(context.Background(), []string{p, pidFile}, Options{Timeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if elapsed := time.Since(start); elapsed > 5*time.Second {
		t.Errorf("Run took %v; want about the 300ms timeout", elapsed)
	}
	if !res.TimedOut || !res.Signaled || res.ExitCode != -1 || res.Stdout != "started\n" {
		t.Errorf("Run = %+v; want TimedOut, Signaled, exit -1, stdout %q", res, "started\n")
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The orphaned sleep is reaped by init shortly after the kill; until then
	// it may be a zombie, which signal 0 still finds, so look at its state.
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("child sleep (pid %d) still running after the timeout", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive reports whether pid is a process that is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// The state follows the command name in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

func TestRunContextCanceled(t *testing.T) {
	p := script(t, "slow.sh", `sleep 60`)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	res, err := Run(ctx, []string{p}, Options{Timeout: time.Minute})
	if err == nil || res.TimedOut {
		t.Errorf("Run with a canceled context = %+v, %v; want an error and not TimedOut", res, err)
	}
}

func TestRunSignaled(t *testing.T) {
	p := script(t, "crash.sh", `kill -SEGV $$`)
	res, err := Run(context.Background(), []string{p}, Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Signaled || res.TimedOut || res.ExitCode != -1 {
		t.Errorf("Run(crash) = %+v; want Signaled, not TimedOut, exit -1", res)
	}
}

func TestRunEnvironment(t *testing.T) {
	t.Setenv("RELAYKEEPER_SECRET", "leak")
	p := script(t, "env.sh", `env | sort`)
	res, err := Run(context.Background(), []string{p}, Options{Env: []string{"EXTRA=1"}})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, line := range strings.Split(res.Stdout, "\n") {
		name, _, ok := strings.Cut(line, "=")
		// IFS's value has a newline in it: skip the continuation line, and
		// the variables that sh itself sets.
		if !ok || name == "PWD" || name == "SHLVL" || name == "_" || name == "OLDPWD" {
			continue
		}
		names = append(names, name)
	}
	if diff := cmp.Diff([]string{"EXTRA", "IFS", "PATH"}, names); diff != "" {
		t.Errorf("environment mismatch (-want +got):\n%s\nfull:\n%s", diff, res.Stdout)
	}
}

func TestRunStdin(t *testing.T) {
	p := script(t, "cat.sh", `cat; echo end`)
	res, err := Run(context.Background(), []string{p}, Options{Timeout: 10 * time.Second})
	if err != nil || res.Stdout != "end\n" {
		t.Errorf("Run with /dev/null stdin = %q, %v; want %q", res.Stdout, err, "end\n")
	}
	res, err = Run(context.Background(), []string{p}, Options{Timeout: 10 * time.Second, Stdin: strings.NewReader("in\n")})
	if err != nil || res.Stdout != "in\nend\n" {
		t.Errorf("Run with stdin = %q, %v; want %q", res.Stdout, err, "in\nend\n")
	}
}

func TestRunPathLookup(t *testing.T) {
	p := script(t, "relaykeeper-test-prog", `echo found`)
	res, err := Run(context.Background(), []string{"relaykeeper-test-prog"}, Options{Env: []string{"PATH=" + filepath.Dir(p)}})
	if err != nil || res.Stdout != "found\n" {
		t.Errorf("Run via PATH = %q, %v; want %q", res.Stdout, err, "found\n")
	}
}

func TestRunCannotStart(t *testing.T) {
	notExec := filepath.Join(t.TempDir(), "plain")
	if err := os.WriteFile(notExec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, prog := range []string{"/nonexistent/filter", "no-such-program-relaykeeper", notExec} {
		_, err := Run(context.Background(), []string{prog}, Options{})
		if err == nil || !strings.Contains(err.Error(), prog) {
			t.Errorf("Run(%q) error = %v; want an error naming the program", prog, err)
		}
	}
}

func TestRunCredential(t *testing.T) {
	if os.Geteuid() != 0 {
		harness.Missing(t, "needs root to change user")
	}
	p := script(t, "id.sh", `id -u`)
	// t.TempDir makes both levels 0700; the other user must get through.
	for _, dir := range []string{filepath.Dir(p), filepath.Dir(filepath.Dir(p))} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	res, err := Run(context.Background(), []string{p}, Options{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}})
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(res.Stdout); got != "65534" {
		t.Errorf("Run as 65534: id -u = %q; want 65534", got)
	}
}

// TestSeeds24RunScriptWithoutShebang: E-MailRelay's user guide prints its
// --filter script without a "#!" line. Such a file is run by /bin/sh, as
// execvp runs it; it used to fail with "exec format error", so every
// message was refused with 451. A binary that cannot run is still an error
// naming the program.
func TestSeeds24RunScriptWithoutShebang(t *testing.T) {
	p := filepath.Join(t.TempDir(), "myspamfilter")
	if err := os.WriteFile(p, []byte("echo \"[$0] [$1] [$2]\"\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	res, err := Run(context.Background(), []string{p, "a b", "c"}, Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("Run(script without #!) = %v", err)
	}
	if want := "[" + p + "] [a b] [c]\n"; res.Stdout != want || res.ExitCode != 3 {
		t.Errorf("Run(script without #!) = %q, exit %d; want %q, exit 3", res.Stdout, res.ExitCode, want)
	}
}

// TestRev24BinaryNotRunByShell: a file the kernel refuses to run with
// ENOEXEC that is no script (another machine's binary, a truncated one,
// an empty file) is an error naming the program, as before the shell
// fallback: /bin/sh read its octets as commands and exited 2 or 127,
// which a --filter takes as a permanent refusal of every message (or, for
// an empty file, exit 0: every message passed unfiltered).
func TestRev24BinaryNotRunByShell(t *testing.T) {
	dir := t.TempDir()
	// An ELF header for a machine this is not (e_machine 0xffff), then
	// text a shell would run.
	elf := append([]byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xff\xff"),
		"\necho ran\nexit 7\n"...)
	for name, data := range map[string][]byte{"foreign": elf, "empty": nil} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o755); err != nil {
			t.Fatal(err)
		}
		res, err := Run(context.Background(), []string{p}, Options{Timeout: 10 * time.Second})
		if err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("Run(%s) = exit %d, stdout %q, err %v; want an error naming it", name, res.ExitCode, res.Stdout, err)
		}
	}
}
