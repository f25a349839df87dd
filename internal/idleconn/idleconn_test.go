package idleconn

import (
	"bufio"
	"net"
	"testing"
	"time"
)

func TestStale(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	r := bufio.NewReader(a)
	if Stale(a, r) {
		t.Errorf("Stale with nothing to read = true; want false")
	}
	go b.Write([]byte("late\n"))
	time.Sleep(20 * time.Millisecond)
	if !Stale(a, r) {
		t.Errorf("Stale with a line to read = false; want true")
	}
	b.Close()
	r2 := bufio.NewReader(a)
	r.Discard(r.Buffered())
	if !Stale(a, r2) {
		t.Errorf("Stale after the close = false; want true")
	}
}
