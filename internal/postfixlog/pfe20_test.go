package postfixlog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestPfe20CatchUpSavesSeldom: reading a long log (a first run, or a
// restart after a while) saved the whole state, the tracker's every queue
// id with it, after each 64 KiB read. With a queue of deferred messages
// that is megabytes written and fsynced per 64 KiB of log: 120 MB of a
// Gmail rate-limit episode (20 000 deferred messages) took ten minutes
// and wrote 6 GB, while new refusals waited. Lines are saved at the end
// of the file, and on the way at most every SaveEvery, unless the caller
// did something that must not be done twice (Unsaved).
func TestPfe20CatchUpSavesSeldom(t *testing.T) {
	dir := t.TempDir()
	log, state := filepath.Join(dir, "mail.log"), filepath.Join(dir, "state")
	line := strings.Repeat("x", 1023) + "\n"
	appendFile(t, log, strings.Repeat(line, 4096)) // 4 MiB: 64 reads
	saves, lines := 0, 0
	f := &Follower{Path: log, State: state, Once: true, Checkpoint: func() ([]byte, error) {
		saves++
		return []byte("{}"), nil
	}}
	if err := f.Run(context.Background(), func(string) error { lines++; return nil }); err != nil {
		t.Fatal(err)
	}
	if lines != 4096 {
		t.Fatalf("read %d lines; want 4096", lines)
	}
	if saves > 4 {
		t.Errorf("the state was saved %d times while reading 4 MiB at once; want a few (at the start and the end)", saves)
	}
	st, err := LoadState(state)
	if err != nil || st.Offset != int64(4096*len(line)) {
		t.Errorf("state offset %d (%v); want %d: the end of the log is saved", st.Offset, err, 4096*len(line))
	}
}

// TestPfe20UnsavedSavesTheBatch: a batch in which the caller did what it
// must not do twice (Unsaved) is saved at once; lines read while
// following are saved when the follower stops, however seldom it saves.
func TestPfe20UnsavedSavesTheBatch(t *testing.T) {
	dir := t.TempDir()
	log, state := filepath.Join(dir, "mail.log"), filepath.Join(dir, "state")
	line := strings.Repeat("x", 1023) + "\n"
	appendFile(t, log, strings.Repeat(line, 1024)) // 1 MiB: 16 reads
	saves, acted := 0, false
	f := &Follower{Path: log, State: state, Once: true, SaveEvery: time.Hour,
		Unsaved:    func() bool { return acted },
		Checkpoint: func() ([]byte, error) { saves++; acted = false; return []byte("{}"), nil }}
	if err := f.Run(context.Background(), func(string) error { acted = true; return nil }); err != nil {
		t.Fatal(err)
	}
	if saves < 16 {
		t.Errorf("saved %d times; want after each of the 16 batches that acted", saves)
	}

	appendFile(t, log, "one\ntwo\n")
	fl := startFollower(t, &Follower{Path: log, State: state, SaveEvery: time.Hour})
	fl.wait(2)
	fl.stop()
	if st, err := LoadState(state); err != nil || st.Offset != int64(1024*len(line)+8) {
		t.Errorf("state offset after stopping = %d (%v); want the end, %d", st.Offset, err, 1024*len(line)+8)
	}
}

// TestPfe20StopWhileCatchingUp: a follower reading a long log stops when
// told (SIGTERM: -s, -r, systemd), saving what it read; it used to read
// on to the end of the file first (a --once run to the very end), and
// "postfix-enforcer -r" gave up after 15 seconds.
func TestPfe20StopWhileCatchingUp(t *testing.T) {
	dir := t.TempDir()
	log, state := filepath.Join(dir, "mail.log"), filepath.Join(dir, "state")
	line := strings.Repeat("x", 1023) + "\n"
	appendFile(t, log, strings.Repeat(line, 4096))
	for _, once := range []bool{true, false} {
		os.Remove(state)
		ctx, cancel := context.WithCancel(context.Background())
		n := 0
		err := (&Follower{Path: log, State: state, Once: once}).Run(ctx, func(string) error {
			if n++; n == 10 {
				cancel()
			}
			return nil
		})
		cancel()
		if !errors.Is(err, context.Canceled) || n >= 4096 {
			t.Errorf("once=%v: Run = %v after %d lines; want context.Canceled before the end", once, err, n)
		}
		if st, err := LoadState(state); err != nil || st.Offset != int64(n*len(line)) {
			t.Errorf("once=%v: state offset %d (%v); want %d, the lines handed on", once, st.Offset, err, n*len(line))
		}
	}
}
