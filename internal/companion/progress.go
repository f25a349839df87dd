package companion

import (
	"io"
	"sync"
	"time"
)

// Progress is -v's output, as relay-enforcer's: a dot per log line read,
// and a new line starting with the time at each new hour. A nil w writes
// nothing.
type Progress struct {
	W       io.Writer
	Now     func() time.Time
	mu      sync.Mutex // guards the fields below
	hour    time.Time
	pending bool // dots written since the last newline
}

func (p *Progress) Dot() {
	if p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.Now()
	if h := now.Truncate(time.Hour); !h.Equal(p.hour) {
		if p.pending {
			io.WriteString(p.W, "\n")
		}
		p.hour = h
		io.WriteString(p.W, now.Format("2006-01-02 15:04:05 "))
	}
	io.WriteString(p.W, ".")
	p.pending = true
}

// breakLine ends a line of dots, so that what follows starts a line.
func (p *Progress) BreakLine() {
	if p.W == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.pending {
		io.WriteString(p.W, "\n")
		p.pending = false
		p.hour = time.Time{}
	}
}

// LineBreaker writes to w after ending progress's line of dots.
type LineBreaker struct {
	P *Progress
	W io.Writer
}

func (l *LineBreaker) Write(b []byte) (int, error) {
	l.P.BreakLine()
	return l.W.Write(b)
}
