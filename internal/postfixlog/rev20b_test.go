package postfixlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRev20bStopWhileRecoveringKeepsWhatWasDone: a stop (SIGTERM) while
// the rest of a rotated log is read (pfe20 made that read stop between
// two 64 KiB reads) saved nothing: what the caller did for the lines
// read so far (an encapsulated copy sent, recorded by Checkpoint) was
// lost, and the next start read those lines and did it all again.
func TestRev20bStopWhileRecoveringKeepsWhatWasDone(t *testing.T) {
	dir := t.TempDir()
	log, state := filepath.Join(dir, "mail.log"), filepath.Join(dir, "state")
	line := func(i int) string { return fmt.Sprintf("%05d %s\n", i, strings.Repeat("x", 1017)) }
	appendFile(t, log, line(0))
	acted := map[string]bool{}
	checkpoint := func() ([]byte, error) { return []byte(fmt.Sprintf("%d", len(acted))), nil }
	if err := (&Follower{Path: log, State: state, Once: true, Checkpoint: checkpoint}).Run(context.Background(), func(l string) error {
		acted[l[:5]] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Written after the last read, then rotated while nobody read.
	var more strings.Builder
	for i := 1; i < 1024; i++ {
		more.WriteString(line(i))
	}
	appendFile(t, log, more.String())
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log, "")

	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := (&Follower{Path: log, State: state, Checkpoint: checkpoint}).Run(ctx, func(l string) error {
		acted[l[:5]] = true
		if n++; n == 10 {
			cancel()
		}
		return nil
	})
	cancel()
	if !errors.Is(err, context.Canceled) || n >= 1023 {
		t.Fatalf("Run = %v after %d lines; want context.Canceled before the end of the rotated file", err, n)
	}
	st, err := LoadState(state)
	if err != nil {
		t.Fatal(err)
	}
	if string(st.App) != fmt.Sprint(len(acted)) {
		t.Errorf("after the stop the state holds %s lines acted on; want %d: what was done while the rotated file was read is lost", st.App, len(acted))
	}
	again := 0
	if err := (&Follower{Path: log, State: state, Once: true, Checkpoint: checkpoint}).Run(context.Background(), func(l string) error {
		if acted[l[:5]] {
			again++
		}
		acted[l[:5]] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if again > 0 || len(acted) != 1024 {
		t.Errorf("the next start handed on %d lines again (%d lines in all); want none again, 1024 in all", again, len(acted))
	}
}
