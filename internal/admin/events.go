package admin

import (
	"bytes"
	"sync"
)

// eventBuffer is how many lines a subscriber may fall behind before lines
// are dropped for it.
const eventBuffer = 256

// maxEventLine bounds a line kept while waiting for its end.
const maxEventLine = 64 << 10

// Events fans lines written to it out to subscribers: an io.Writer to put
// beside the mail log's file (io.MultiWriter), so that "notify" sessions
// see every mail-log line. The zero value is ready to use.
//
// Write never blocks on a subscriber: one that has fallen eventBuffer lines
// behind misses lines until it catches up, so a stuck admin client cannot
// hold up the mail log and with it the SMTP sessions.
type Events struct {
	mu      sync.Mutex // guards the fields below
	subs    map[*eventSub]struct{}
	partial []byte // the start of a line whose end has not been written yet
}

type eventSub struct {
	ch chan string
}

// Write splits p into lines and hands each complete one to every
// subscriber, without its line ending. It always reports success.
func (e *Events) Write(p []byte) (int, error) {
	n := len(p)
	e.mu.Lock()
	defer e.mu.Unlock()
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			// Keep the start of an overlong line: it is cut, not lost.
			room := max(maxEventLine-len(e.partial), 0)
			e.partial = append(e.partial, p[:min(room, len(p))]...)
			break
		}
		line := p[:i]
		if len(e.partial) > 0 {
			line = append(e.partial, line...)
			e.partial = e.partial[:0]
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		e.publish(string(line[:min(len(line), maxEventLine)]))
		p = p[i+1:]
	}
	return n, nil
}

// Publish hands one event line to every subscriber.
func (e *Events) Publish(line string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.publish(line)
}

func (e *Events) publish(line string) {
	for sub := range e.subs {
		select {
		case sub.ch <- line:
		default: // it has fallen behind: it misses this line
		}
	}
}

// Subscribe returns a channel of event lines and a function that ends the
// subscription and closes the channel; calling it again does nothing.
func (e *Events) Subscribe() (<-chan string, func()) {
	sub := &eventSub{ch: make(chan string, eventBuffer)}
	e.mu.Lock()
	if e.subs == nil {
		e.subs = map[*eventSub]struct{}{}
	}
	e.subs[sub] = struct{}{}
	e.mu.Unlock()
	var once sync.Once
	return sub.ch, func() {
		once.Do(func() {
			e.mu.Lock()
			delete(e.subs, sub)
			close(sub.ch)
			e.mu.Unlock()
		})
	}
}
