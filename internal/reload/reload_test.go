package reload

import (
	"context"
	"sync"
	"testing"
	"time"
)

type recorder struct {
	mu    sync.Mutex
	calls []bool
}

func (r *recorder) Reload(all bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, all)
}

func (r *recorder) got() []bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]bool(nil), r.calls...)
}

var _ Loader = (*recorder)(nil)

// TestRunner: Request reads the changed files, All everything, both on
// Run's goroutine; Run returns when its context ends.
func TestRunner(t *testing.T) {
	rec := &recorder{}
	r := New(rec, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	r.Request()
	waitLen(t, rec, 1)
	r.All()
	waitLen(t, rec, 2)
	if got := rec.got(); got[0] || !got[1] {
		t.Errorf("calls = %v; want [false true]", got)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func waitLen(t *testing.T, rec *recorder, n int) {
	t.Helper()
	for i := 0; i < 500 && len(rec.got()) < n; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	if got := rec.got(); len(got) != n {
		t.Fatalf("calls = %v; want %d", got, n)
	}
}

// slowLoader takes a while to reload, as a large table does.
type slowLoader struct{ done chan bool }

func (l *slowLoader) Reload(all bool) {
	time.Sleep(200 * time.Millisecond)
	l.done <- all
}

// TestAud4AllWaitReturnsAfterReload: SIGHUP rescans the spool right after
// asking for the reload; with All, which only signals the reload
// goroutine, the rescan planned routes with the old tables. AllWait
// returns only once the reload is done.
func TestAud4AllWaitReturnsAfterReload(t *testing.T) {
	l := &slowLoader{done: make(chan bool, 1)}
	r := New(l, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	r.AllWait(ctx)
	select {
	case all := <-l.done:
		if !all {
			t.Error("AllWait reloaded only the changed files; want all")
		}
	default:
		t.Fatal("AllWait returned before the reload was done")
	}
}
