package queue

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestPIDFileConcurrentStarts: relays that start on one spool at about
// the same time (two systemd units) each read the pid file, add themselves
// and rename their version into place; without a lock, the last rename
// wins and the others are not in the file: queue commands never notify
// them, and RemovePID of the survivor removes the file.
func TestPIDFileConcurrentStarts(t *testing.T) {
	if dir := os.Getenv("REV2_PID_CHILD"); dir != "" {
		s, err := spool.Open(dir, nil)
		if err != nil {
			os.Exit(2)
		}
		if err := WritePID(s); err != nil {
			os.Exit(3)
		}
		os.Stdout.WriteString("written\n")
		// Still running until the test closes standard input (or a
		// minute has passed).
		done := make(chan struct{})
		go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
		}
		os.Exit(0)
	}
	dir := t.TempDir()
	if _, err := spool.Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var cmds []*exec.Cmd
	var stdins []io.Closer
	var outs []*bufio.Reader
	defer func() {
		for _, in := range stdins {
			in.Close() // the child exits
		}
		for _, c := range cmds {
			c.Wait()
		}
	}()
	for range n {
		c := exec.Command(os.Args[0], "-test.run=TestPIDFileConcurrentStarts")
		c.Env = append(os.Environ(), "REV2_PID_CHILD="+dir)
		in, err := c.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds, stdins, outs = append(cmds, c), append(stdins, in), append(outs, bufio.NewReader(out))
	}
	// Each child says when it has written itself in; all are still
	// running when the file is read, however slow the machine.
	for i, out := range outs {
		if line, err := out.ReadString('\n'); line != "written\n" {
			t.Fatalf("child %d: %q, %v; want it to say it wrote the pid file", i, line, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, PIDFile))
	listed := strings.Fields(string(b))
	if len(listed) != n {
		t.Errorf("%d relays running on the spool, the pid file lists %d: %q", n, len(listed), listed)
	}
}
