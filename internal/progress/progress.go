// Package progress draws a one-line progress bar for long commands on a
// terminal: "relaykeeper --as-client" over a large spool, "relaykeeper
// queue" changes over many messages. The caller decides whether to draw at
// all (only on a terminal); a nil *Bar draws nothing, so callers need no
// checks. Log lines written to the same terminal through a Terminal clear
// the bar, appear whole, and the bar is drawn again below them.
package progress

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// width is the bar's width in cells.
const width = 30

// Terminal is a terminal shared by a progress bar and other writers.
// It is safe for concurrent use.
type Terminal struct {
	mu  sync.Mutex // guards w and bar
	w   io.Writer
	bar string // the bar as last drawn; "" when none is showing
}

// NewTerminal shares w, a terminal.
func NewTerminal(w io.Writer) *Terminal { return &Terminal{w: w} }

// Write writes p, which should be whole lines, above the bar.
func (t *Terminal) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bar != "" {
		io.WriteString(t.w, "\r\033[K") // erase the bar's line
	}
	n, err := t.w.Write(p)
	if t.bar != "" {
		io.WriteString(t.w, t.bar)
	}
	return n, err
}

func (t *Terminal) draw(bar string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bar = bar
	io.WriteString(t.w, "\r"+bar)
}

func (t *Terminal) end() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.bar != "" {
		t.bar = ""
		io.WriteString(t.w, "\n")
	}
}

// Bar is a progress bar redrawn in place. Its methods are called from one
// goroutine.
type Bar struct {
	t     *Terminal
	label string
	total int
	done  int
	now   func() time.Time
	drawn time.Time // when it was last drawn; zero before the first
}

// New starts a bar for total items (0 if not known yet; see Step) on t.
func New(t *Terminal, label string, total int) *Bar {
	return &Bar{t: t, label: label, total: total, now: time.Now}
}

// Set records that done items are done, and redraws at most ten times a
// second, and always when done reaches the total.
func (b *Bar) Set(done int) {
	if b == nil {
		return
	}
	b.done = done
	if now := b.now(); done >= b.total || now.Sub(b.drawn) >= 100*time.Millisecond {
		b.drawn = now
		b.t.draw(b.String())
	}
}

// Step records that done of total items are done, for a total that is
// known only once the work has started.
func (b *Bar) Step(done, total int) {
	if b != nil {
		b.total = total
		b.Set(done)
	}
}

// Finish ends the bar's line, so that what is printed next starts on a
// line of its own. A bar that never had anything to show stays undrawn.
func (b *Bar) Finish() {
	if b != nil {
		b.t.end()
	}
}

// String is the bar as drawn: "label [#####     ] 5/10  50%".
func (b *Bar) String() string {
	total := max(b.total, 1)
	done := min(max(b.done, 0), total)
	filled := done * width / total
	return fmt.Sprintf("%s [%s%s] %d/%d %3d%%", b.label, strings.Repeat("#", filled),
		strings.Repeat(" ", width-filled), b.done, b.total, done*100/total)
}
