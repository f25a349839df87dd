package postfixlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// follower runs a Follower in the background and collects its lines.
type follower struct {
	t      *testing.T
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	lines  []string
}

func startFollower(t *testing.T, f *Follower) *follower {
	t.Helper()
	if f.Poll == 0 {
		f.Poll = 10 * time.Millisecond
	}
	ctx, cancel := context.WithCancel(context.Background())
	fl := &follower{t: t, cancel: cancel, done: make(chan error, 1)}
	go func() {
		fl.done <- f.Run(ctx, func(line string) error {
			fl.mu.Lock()
			fl.lines = append(fl.lines, line)
			fl.mu.Unlock()
			return nil
		})
	}()
	t.Cleanup(func() { fl.stop() })
	return fl
}

// stop cancels the follower and waits for it.
func (fl *follower) stop() {
	fl.cancel()
	select {
	case err := <-fl.done:
		if err != nil && !errors.Is(err, context.Canceled) {
			fl.t.Errorf("Run: %v", err)
		}
		fl.done <- nil // for a second stop
	case <-time.After(5 * time.Second):
		fl.t.Fatal("the follower did not stop")
	}
}

// wait waits until n lines have come and returns them.
func (fl *follower) wait(n int) []string {
	fl.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		fl.mu.Lock()
		got := append([]string(nil), fl.lines...)
		fl.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			fl.t.Fatalf("got %d lines %q; want %d", len(got), got, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func appendFile(t *testing.T, path, text string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(text); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func numbered(from, to int) (text string, lines []string) {
	for i := from; i <= to; i++ {
		l := fmt.Sprintf("line %d", i)
		lines = append(lines, l)
		text += l + "\n"
	}
	return text, lines
}

// runOnce runs a Follower in Once mode and returns its lines.
func runOnce(t *testing.T, path, state string) []string {
	t.Helper()
	var got []string
	f := &Follower{Path: path, State: state, Once: true}
	if err := f.Run(context.Background(), func(l string) error { got = append(got, l); return nil }); err != nil {
		t.Fatalf("Run once: %v", err)
	}
	return got
}

func TestFollowGrowing(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "mail.log")
	appendFile(t, log, "one\ntwo\n")
	fl := startFollower(t, &Follower{Path: log, State: filepath.Join(dir, "state")})
	fl.wait(2)
	appendFile(t, log, "three\nfou")
	time.Sleep(50 * time.Millisecond)
	appendFile(t, log, "r\r\nfive\n")
	got := fl.wait(5)
	if diff := cmp.Diff([]string{"one", "two", "three", "four", "five"}, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestFollowMissingFileAppears(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "mail.log")
	fl := startFollower(t, &Follower{Path: log, State: filepath.Join(dir, "state")})
	time.Sleep(50 * time.Millisecond)
	appendFile(t, log, "hello\n")
	if got := fl.wait(1); got[0] != "hello" {
		t.Errorf("lines = %q; want [hello]", got)
	}

	var got []string
	err := (&Follower{Path: filepath.Join(dir, "absent"), Once: true}).Run(context.Background(), func(l string) error { got = append(got, l); return nil })
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Run once on a missing file = %v; want a not-exist error", err)
	}
}

func TestFollowRenameRotation(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "mail.log")
	text, want := numbered(1, 3)
	appendFile(t, log, text)
	fl := startFollower(t, &Follower{Path: log, State: filepath.Join(dir, "state")})
	fl.wait(3)

	// logrotate renames; the logger writes on to the old file until it
	// reopens, and the new file may not exist at once.
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	more, lines := numbered(4, 5)
	want = append(want, lines...)
	appendFile(t, log+".1", more+"partial without newline")
	want = append(want, "partial without newline")
	time.Sleep(50 * time.Millisecond)
	more, lines = numbered(6, 8)
	want = append(want, lines...)
	appendFile(t, log, more)

	got := fl.wait(len(want))
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

func TestFollowCopyTruncateMidRun(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "mail.log")
	text, want := numbered(1, 3)
	appendFile(t, log, text)

	// The callback holds the first line until the log has been copied and
	// truncated: lines 2-5, unread then, must come from the copy.
	release := make(chan struct{})
	var mu sync.Mutex
	var got []string
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	first := make(chan struct{})
	go func() {
		f := &Follower{Path: log, State: filepath.Join(dir, "state"), Poll: 10 * time.Millisecond}
		done <- f.Run(ctx, func(l string) error {
			if l == "line 1" {
				close(first)
				<-release
			}
			mu.Lock()
			got = append(got, l)
			mu.Unlock()
			return nil
		})
	}()
	<-first
	more, lines := numbered(4, 5)
	want = append(want, lines...)
	appendFile(t, log, more)
	more, lines = numbered(6, 7)
	want = append(want, lines...)
	copyTruncate(t, log, more)
	close(release)

	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // nothing more, no duplicates
	cancel()
	<-done
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

// TestFollowCopyTruncateRegrown: truncated and grown past the old offset
// between two polls; the last line read is no longer where it was.
func TestFollowCopyTruncateRegrown(t *testing.T) {
	dir := t.TempDir()
	log, state := filepath.Join(dir, "mail.log"), filepath.Join(dir, "state")
	text, want := numbered(1, 2)
	appendFile(t, log, text)
	if got := runOnce(t, log, state); !cmp.Equal(got, want) {
		t.Fatalf("first run = %q; want %q", got, want)
	}
	more, lines := numbered(3, 3)
	appendFile(t, log, more)
	more, lines2 := numbered(4, 9) // longer than what was there
	copyTruncate(t, log, more)
	want = append(lines, lines2...)
	if got := runOnce(t, log, state); !cmp.Equal(got, want) {
		t.Errorf("after copytruncate = %q; want %q", got, want)
	}
}

// TestFollowRestart stops and starts followers at random points: every line
// comes exactly once.
func TestFollowRestart(t *testing.T) {
	dir := t.TempDir()
	log, state := filepath.Join(dir, "mail.log"), filepath.Join(dir, "state")
	var want, got []string
	for round := 0; round < 5; round++ {
		text, lines := numbered(round*10, round*10+9)
		want = append(want, lines...)
		appendFile(t, log, text[:len(text)/2])
		fl := startFollower(t, &Follower{Path: log, State: state})
		appendFile(t, log, text[len(text)/2:])
		fl.wait(10 - 5 + 0) // at least the first half
		time.Sleep(20 * time.Millisecond)
		fl.stop()
		got = append(got, fl.lines...)
	}
	got = append(got, runOnce(t, log, state)...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines over restarts (-want +got):\n%s", diff)
	}
	if again := runOnce(t, log, state); len(again) != 0 {
		t.Errorf("another run = %q; want nothing", again)
	}
}

// TestFollowFailingCallback: the line whose callback failed is handed on
// again after a restart, and none before it.
func TestFollowFailingCallback(t *testing.T) {
	dir := t.TempDir()
	log, state := filepath.Join(dir, "mail.log"), filepath.Join(dir, "state")
	text, want := numbered(1, 5)
	appendFile(t, log, text)
	var got []string
	boom := errors.New("boom")
	err := (&Follower{Path: log, State: state, Once: true}).Run(context.Background(), func(l string) error {
		if l == "line 3" {
			return boom
		}
		got = append(got, l)
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Run = %v; want boom", err)
	}
	got = append(got, runOnce(t, log, state)...)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

// TestFollowRestartAfterRotation: rotated (by rename and by copytruncate)
// while no follower ran; the rest of the old file is read first.
func TestFollowRestartAfterRotation(t *testing.T) {
	for _, how := range []string{"rename", "copytruncate"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			log, state := filepath.Join(dir, "mail.log"), filepath.Join(dir, "state")
			text, _ := numbered(1, 3)
			appendFile(t, log, text)
			runOnce(t, log, state)
			more, want := numbered(4, 5)
			appendFile(t, log, more)
			// An older rotation, which must not be taken for the copy.
			os.WriteFile(log+".2.gz", []byte("junk"), 0o644)
			os.WriteFile(log+".2", []byte("line 1\nline 2\nline 3\nline x\n"), 0o644)
			switch how {
			case "rename":
				os.Rename(log, log+".1")
			case "copytruncate":
				b, _ := os.ReadFile(log)
				os.WriteFile(log+".1", b, 0o644)
				os.Truncate(log, 0)
			}
			more, lines := numbered(6, 7)
			want = append(want, lines...)
			appendFile(t, log, more)
			if got := runOnce(t, log, state); !cmp.Equal(got, want) {
				t.Errorf("after %s = %q; want %q", how, got, want)
			}
			if got := runOnce(t, log, state); len(got) != 0 {
				t.Errorf("again = %q; want nothing", got)
			}
		})
	}
}

func TestFollowFromEndAndReadOnly(t *testing.T) {
	dir := t.TempDir()
	log, state := filepath.Join(dir, "mail.log"), filepath.Join(dir, "state")
	appendFile(t, log, "old 1\nold 2\nhalf")
	var got []string
	f := &Follower{Path: log, State: state, Once: true, FromEnd: true}
	collect := func(l string) error { got = append(got, l); return nil }
	if err := f.Run(context.Background(), collect); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log, " line\nnew\n")
	if err := f.Run(context.Background(), collect); err != nil {
		t.Fatal(err)
	}
	if want := []string{"half line", "new"}; !cmp.Equal(got, want) {
		t.Errorf("from the end = %q; want %q", got, want)
	}
	// ReadOnly: the state is used but not moved.
	appendFile(t, log, "dry\n")
	for i := 0; i < 2; i++ {
		got = nil
		ro := &Follower{Path: log, State: state, Once: true, ReadOnly: true}
		if err := ro.Run(context.Background(), collect); err != nil {
			t.Fatal(err)
		}
		if !cmp.Equal(got, []string{"dry"}) {
			t.Errorf("read-only run %d = %q; want [dry]", i, got)
		}
	}
}

func TestStateCheckpoint(t *testing.T) {
	dir := t.TempDir()
	log, state := filepath.Join(dir, "mail.log"), filepath.Join(dir, "state")
	appendFile(t, log, "a\nb\n")
	n := 0
	f := &Follower{Path: log, State: state, Once: true, Checkpoint: func() ([]byte, error) {
		return []byte(fmt.Sprintf(`{"n":%d}`, n)), nil
	}}
	if err := f.Run(context.Background(), func(string) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	st, err := LoadState(state)
	if err != nil {
		t.Fatal(err)
	}
	if string(st.App) != `{"n":2}` || st.Offset != 4 || st.LineLen != 2 {
		t.Errorf("state = %+v app %s; want offset 4, last line 2 bytes, app {\"n\":2}", st.Position, st.App)
	}
	os.WriteFile(state, []byte("{not json"), 0o600)
	if _, err := LoadState(state); err == nil || !strings.Contains(err.Error(), state) {
		t.Errorf("LoadState(bad) = %v; want an error naming the file", err)
	}
}

// TestFollowCopyTruncateRegrownMidRun: between two polls the log is copied,
// truncated and written past the old offset; nothing is read from the old
// offset of the new content.
func TestFollowCopyTruncateRegrownMidRun(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "mail.log")
	text, want := numbered(1, 2)
	appendFile(t, log, text)
	fl := startFollower(t, &Follower{Path: log, State: filepath.Join(dir, "state"), Poll: 300 * time.Millisecond})
	fl.wait(2)
	more, lines := numbered(3, 3)
	want = append(want, lines...)
	appendFile(t, log, more)
	b, _ := os.ReadFile(log)
	os.WriteFile(log+".1", b, 0o644)
	os.Truncate(log, 0)
	more, lines = numbered(10, 19)
	want = append(want, lines...)
	appendFile(t, log, more)
	got := fl.wait(len(want))
	time.Sleep(100 * time.Millisecond)
	if diff := cmp.Diff(want, fl.wait(len(want))); diff != "" || len(got) != len(want) {
		t.Errorf("lines (-want +got):\n%s", diff)
	}
}

// TestFollowLongLine: of a line longer than maxLine only its first maxLine
// bytes come; the rest, here shaped as a Postfix line a client could have
// written, is not handed on as a line. The follower goes on (the piece's
// hash is checked like a line's).
func TestFollowLongLine(t *testing.T) {
	dir := t.TempDir()
	log, state := filepath.Join(dir, "mail.log"), filepath.Join(dir, "state")
	forged := "Dec  5 03:02:30 host postfix/smtpd[1]: 4C2B7985118: client=victim[198.51.100.7]"
	long := strings.Repeat("x", maxLine) + forged
	appendFile(t, log, long+"\nafter\n")
	got := runOnce(t, log, state)
	if len(got) != 2 || got[0] != long[:maxLine] || got[1] != "after" {
		t.Errorf("got %d lines (lengths %v); want the long line's first maxLine bytes, then \"after\"", len(got), func() []int {
			var n []int
			for _, l := range got {
				n = append(n, len(l))
			}
			return n
		}())
	}
	appendFile(t, log, "next\n")
	if got := runOnce(t, log, state); len(got) != 1 || got[0] != "next" {
		t.Errorf("next run = %q; want [next]", got)
	}
}
