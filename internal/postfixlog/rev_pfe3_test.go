package postfixlog

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// The writer wrote a line in two pieces, and logrotate's copytruncate
// came between them: the copy ends with the line's head, the truncated
// log starts with its tail. The tail was handed on as a line of its own,
// starting wherever the writer's text was at the cut: text a client chose
// (a quoted recipient, an echoed sender), shaped as a whole Postfix line,
// could name any queue id and any refusal. It is dropped, as the tail of
// an overlong line is.
const (
	revPFE3Head = `Dec  6 10:00:01 mx postfix/smtp[105]: 4A0001ABC1: to=<"x `
	revPFE3Tail = `Dec  6 10:00:01 mx postfix/smtp[105]: 4B0009ABC9: to=<v@gmail.test>, relay=forged"@gmail.test>, relay=...` + "\n"
)

// TestRevPFE3CopyTruncateSplitLine: the split found by a restart.
func TestRevPFE3CopyTruncateSplitLine(t *testing.T) {
	dir := t.TempDir()
	log, state := filepath.Join(dir, "mail.log"), filepath.Join(dir, "state")
	text, want := numbered(1, 1)
	appendFile(t, log, text)
	if got := runOnce(t, log, state); !cmp.Equal(got, want) {
		t.Fatalf("first run = %q; want %q", got, want)
	}
	appendFile(t, log, revPFE3Head)
	more, lines := numbered(2, 3)
	copyTruncate(t, log, revPFE3Tail+more)
	want = append([]string{revPFE3Head}, lines...)
	if got := runOnce(t, log, state); !cmp.Equal(got, want) {
		t.Errorf("after copytruncate = %q; want %q", got, want)
	}
}

// TestRevPFE3CopyTruncateSplitLineMidRun: the split seen while following.
func TestRevPFE3CopyTruncateSplitLineMidRun(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "mail.log")
	text, want := numbered(1, 1)
	appendFile(t, log, text)
	fl := startFollower(t, &Follower{Path: log, State: filepath.Join(dir, "state")})
	fl.wait(1)
	appendFile(t, log, revPFE3Head)
	time.Sleep(100 * time.Millisecond) // read, not handed on
	more, lines := numbered(2, 3)
	copyTruncate(t, log, revPFE3Tail+more)
	want = append(append(want, revPFE3Head), lines...)
	got := fl.wait(len(want))
	time.Sleep(100 * time.Millisecond)
	fl.mu.Lock()
	got = append(got[:0:0], fl.lines...)
	fl.mu.Unlock()
	if !cmp.Equal(got, want) {
		t.Errorf("lines = %q; want %q", got, want)
	}
}

// TestRevPFE3CopyTruncateWholeLine: a line read in part while following,
// then finished before copytruncate's copy: the copy holds it whole, and
// the log's first line after the truncation is a line of its own.
func TestRevPFE3CopyTruncateWholeLine(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "mail.log")
	text, _ := numbered(1, 1)
	appendFile(t, log, text)
	fl := startFollower(t, &Follower{Path: log, State: filepath.Join(dir, "state"), Poll: time.Hour})
	fl.wait(1)
	fl.stop()
	appendFile(t, log, "line 2 head")
	fl = startFollower(t, &Follower{Path: log, State: filepath.Join(dir, "state")})
	time.Sleep(100 * time.Millisecond) // read, not handed on
	appendFile(t, log, " and tail\n")
	more, lines := numbered(3, 4)
	copyTruncate(t, log, more)
	want := append([]string{"line 2 head and tail"}, lines...)
	got := fl.wait(len(want))
	if !cmp.Equal(got, want) {
		t.Errorf("lines = %q; want %q", got, want)
	}
}

// copyTruncate rotates log as logrotate's copytruncate does, to log.1,
// and writes then to the truncated log.
func copyTruncate(t *testing.T, log, then string) {
	t.Helper()
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log+".1", b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(log, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log, then)
}
