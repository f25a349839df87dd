package memlimit

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	b := &Budget{base: 16 << 20, perSession: 100 << 10}
	for _, tc := range []struct{ n, live, want int64 }{
		{-1, 0, 16 << 20},
		{0, 0, 16 << 20},
		{1, 0, 16<<20 + 16*100<<10},
		{16, 0, 16<<20 + 16*100<<10},
		{17, 0, 16<<20 + 32*100<<10},
		{100, 0, 16<<20 + 112*100<<10},
		{math.MaxInt64 / 2, 0, math.MaxInt64},
		// The live heap's floor: never below 1.5 times it plus 4 MiB.
		{0, 8 << 20, 16 << 20},
		{0, 10 << 20, 19 << 20},
		{100, 40 << 20, 64 << 20},
	} {
		if got := b.Limit(tc.n, tc.live); got != tc.want {
			t.Errorf("Limit(%d, %d) = %d; want %d", tc.n, tc.live, got, tc.want)
		}
	}
}

// TestBudget: the runtime's limit follows the sessions, and GOMEMLIMIT or
// a base of 0 leaves it alone.
func TestBudget(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })

	t.Setenv("GOMEMLIMIT", "")
	b := New(16<<20, 100<<10)
	defer b.Stop()
	if got := debug.SetMemoryLimit(-1); got != 16<<20 {
		t.Fatalf("limit with no sessions = %d; want %d", got, 16<<20)
	}
	for range 20 {
		b.SessionOpened()
	}
	if got, want := debug.SetMemoryLimit(-1), b.sessionLimit(20); got != want {
		t.Errorf("limit with 20 sessions = %d; want %d", got, want)
	}
	// A few fewer: it stays (a step of slack), even after a collection.
	for range 6 {
		b.SessionClosed()
	}
	runtime.GC()
	time.Sleep(50 * time.Millisecond)
	if got, want := debug.SetMemoryLimit(-1), b.sessionLimit(20); got != want {
		t.Errorf("limit with 14 sessions after 20 = %d; want %d still", got, want)
	}
	for range 14 {
		b.SessionClosed()
	}
	// It comes down after a collection, not at once.
	if got, want := debug.SetMemoryLimit(-1), b.sessionLimit(20); got != want {
		t.Errorf("limit just after the sessions closed = %d; want %d, until a collection", got, want)
	}
	for deadline := time.Now().Add(5 * time.Second); debug.SetMemoryLimit(-1) != 16<<20; {
		if time.Now().After(deadline) {
			t.Fatalf("limit after the sessions closed and collections = %d; want %d", debug.SetMemoryLimit(-1), 16<<20)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	New(0, 100<<10).SessionOpened()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("base 0 set the limit to %d", got)
	}
	t.Setenv("GOMEMLIMIT", "1GiB")
	New(16<<20, 100<<10).SessionOpened()
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set, the limit was set to %d", got)
	}
	var nilBudget *Budget
	nilBudget.SessionOpened() // does nothing
}

// TestFollowsLiveHeap: after a collection the limit is at least one and a
// half times the live heap plus the headroom, whatever the base.
func TestFollowsLiveHeap(t *testing.T) {
	orig := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(orig) })
	t.Setenv("GOMEMLIMIT", "")
	keep := make([]byte, 8<<20) // live across the collection
	b := New(1, 0)
	defer b.Stop()
	for deadline := time.Now().Add(5 * time.Second); debug.SetMemoryLimit(-1) < 8<<20+4<<20; {
		if time.Now().After(deadline) {
			t.Fatalf("limit after collections = %d; want at least %d", debug.SetMemoryLimit(-1), 8<<20+4<<20)
		}
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	runtime.KeepAlive(keep)
}

// TestS28RaisesGCPercent: under the limit the proportional trigger goes to
// gcPercent; GOGC in the environment, or no limit, leaves it alone.
func TestS28RaisesGCPercent(t *testing.T) {
	origLimit := debug.SetMemoryLimit(-1)
	origPercent := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetMemoryLimit(origLimit); debug.SetGCPercent(origPercent) })
	t.Setenv("GOMEMLIMIT", "")

	t.Setenv("GOGC", "")
	New(16<<20, 100<<10).Stop()
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GC percent under the limit = %d; want %d", got, gcPercent)
	}
	New(0, 100<<10).Stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent without a limit = %d; want 100 (untouched)", got)
	}
	t.Setenv("GOGC", "150")
	New(16<<20, 100<<10).Stop()
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent with GOGC set = %d; want 100 (untouched)", got)
	}
}
