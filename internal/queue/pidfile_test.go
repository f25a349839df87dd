package queue

import (
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
		time.Sleep(3 * time.Second) // still running
		os.Exit(0)
	}
	dir := t.TempDir()
	if _, err := spool.Open(dir, nil); err != nil {
		t.Fatal(err)
	}
	const n = 8
	var cmds []*exec.Cmd
	for range n {
		c := exec.Command(os.Args[0], "-test.run=TestPIDFileConcurrentStarts")
		c.Env = append(os.Environ(), "REV2_PID_CHILD="+dir)
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, c)
	}
	time.Sleep(1500 * time.Millisecond)
	b, _ := os.ReadFile(filepath.Join(dir, PIDFile))
	listed := strings.Fields(string(b))
	for _, c := range cmds {
		c.Wait()
	}
	if len(listed) != n {
		t.Errorf("%d relays running on the spool, the pid file lists %d: %q", n, len(listed), listed)
	}
}
