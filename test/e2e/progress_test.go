package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// onTerminal runs the binary with a pseudo-terminal as its standard
// streams, through script(1), and returns what the terminal showed.
func onTerminal(t *testing.T, args ...string) string {
	t.Helper()
	script, err := exec.LookPath("script")
	if err != nil {
		t.Fatalf("script(1) is needed to give the command a terminal: %v", err)
	}
	cmdline := harness.Binary(t)
	for _, a := range args {
		cmdline += " '" + a + "'"
	}
	out, _, code := runBinary(t, script, "", "-qec", cmdline, "/dev/null")
	if code != 0 {
		t.Fatalf("on a terminal: relaykeeper %v: exit %d\n%s", args, code, out)
	}
	return out
}

// TestProgressBars: a queue change over many messages and --as-client over
// a spool of them draw a progress bar on a terminal, and print nothing of
// the kind when their output is not one.
func TestProgressBars(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	const n = 60
	for i := range n {
		if _, errOut, code := opsCmd(t, fmt.Sprintf("Subject: %d\n\nbody\n", i), "submit", "--spool-dir", spool,
			"-f", "a@example.org", fmt.Sprintf("r%d@example.net", i)); code != 0 {
			t.Fatalf("submit: exit %d, %s", code, errOut)
		}
	}

	out := onTerminal(t, "queue", "hold", "--all", "--spool-dir", spool)
	if !strings.Contains(out, "\rhold [") || !strings.Contains(out, fmt.Sprintf("] %d/%d 100%%", n, n)) {
		t.Errorf("queue hold --all on a terminal showed no finished bar:\n%q", out)
	}
	out, errOut, code := opsCmd(t, "", "queue", "release", "--all", "--spool-dir", spool)
	if code != 0 || strings.Contains(out+errOut, "\r") || strings.Contains(out+errOut, "[#") {
		t.Errorf("queue release --all off a terminal = exit %d, %q %q; want no bar", code, out, errOut)
	}

	sink := harness.StartSink(t, harness.SinkOptions{})
	out = onTerminal(t, "--as-client", sink.Addr(), "--spool-dir", spool)
	if !strings.Contains(out, "\rdelivering [") || !strings.Contains(out, fmt.Sprintf("] %d/%d 100%%", n, n)) {
		t.Errorf("--as-client on a terminal showed no finished bar:\n%q", out)
	}
	if !strings.Contains(out, fmt.Sprintf("%d message(s): %d delivered", n, n)) {
		t.Errorf("--as-client did not print its summary:\n%q", out)
	}
	if got := sink.WaitCount(t, n, 10*time.Second); got != n {
		t.Errorf("the sink got %d messages; want %d", got, n)
	}
}
