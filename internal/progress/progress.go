// Package progress draws a one-line progress bar for long commands on a
// terminal: "relaykeeper --as-client" over a large spool, "relaykeeper
// queue" changes over many messages. The caller decides whether to draw at
// all (only on a terminal); a nil *Bar draws nothing, so callers need no
// checks.
package progress

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// width is the bar's width in cells.
const width = 30

// Bar is a progress bar redrawn in place with a carriage return. It is not
// safe for concurrent use.
type Bar struct {
	w     io.Writer
	label string
	total int
	done  int
	now   func() time.Time
	drawn time.Time // when it was last drawn; zero before the first
}

// New starts a bar for total items, drawn on w (a terminal).
func New(w io.Writer, label string, total int) *Bar {
	return &Bar{w: w, label: label, total: total, now: time.Now}
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
		b.draw()
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

// Add records n more items done.
func (b *Bar) Add(n int) {
	if b != nil {
		b.Set(b.done + n)
	}
}

// Finish draws the final state and ends the line, so that what is printed
// next starts on a line of its own. A bar that never had anything to show
// stays undrawn.
func (b *Bar) Finish() {
	if b == nil || b.drawn.IsZero() {
		return
	}
	b.draw()
	io.WriteString(b.w, "\n")
}

func (b *Bar) draw() {
	total := max(b.total, 1)
	done := min(max(b.done, 0), total)
	filled := done * width / total
	fmt.Fprintf(b.w, "\r%s [%s%s] %d/%d %3d%%", b.label, strings.Repeat("#", filled),
		strings.Repeat(" ", width-filled), b.done, b.total, done*100/total)
}
