package admin

import (
	"fmt"
	"testing"
)

func TestEvents(t *testing.T) {
	var e Events // the zero value works
	ch, cancel := e.Subscribe()
	fmt.Fprint(&e, "one\r\ntw")
	fmt.Fprint(&e, "o\nthree")
	e.Publish("direct")
	fmt.Fprint(&e, "\n")
	for _, want := range []string{"one", "two", "direct", "three"} {
		if got := <-ch; got != want {
			t.Errorf("event = %q; want %q", got, want)
		}
	}
	cancel()
	cancel() // a second cancel does nothing
	if _, ok := <-ch; ok {
		t.Error("channel still open after cancel")
	}
	e.Publish("after cancel") // no subscriber: no panic, no block
}

// TestEventsSlowSubscriber: a subscriber that does not read misses lines;
// the writer never waits for it, and others get everything.
func TestEventsSlowSubscriber(t *testing.T) {
	var e Events
	slow, cancelSlow := e.Subscribe()
	defer cancelSlow()
	fast, cancelFast := e.Subscribe()
	defer cancelFast()
	got := 0
	for i := range 2 * eventBuffer {
		e.Publish(fmt.Sprint(i))
		<-fast
		got++
	}
	if got != 2*eventBuffer {
		t.Errorf("fast subscriber got %d lines; want %d", got, 2*eventBuffer)
	}
	if n := len(slow); n != eventBuffer {
		t.Errorf("slow subscriber holds %d lines; want %d (the rest dropped)", n, eventBuffer)
	}
	if first := <-slow; first != "0" {
		t.Errorf("slow subscriber's first line = %q; want the oldest, 0", first)
	}
}

func TestEventsLongLine(t *testing.T) {
	var e Events
	ch, cancel := e.Subscribe()
	defer cancel()
	long := make([]byte, maxEventLine+100)
	for i := range long {
		long[i] = 'x'
	}
	e.Write(long)
	e.Write([]byte("tail\n"))
	if got := <-ch; len(got) != maxEventLine {
		t.Errorf("overlong line kept %d bytes; want %d", len(got), maxEventLine)
	}
}
