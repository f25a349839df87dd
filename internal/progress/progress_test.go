package progress

import (
	"bytes"
	"io"
	"testing"
	"time"
)

var _ io.Writer = (*Terminal)(nil)

func TestBar(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(0, 0)
	term := NewTerminal(&out)
	b := New(term, "delivering", 200)
	b.now = func() time.Time { return now }
	b.Set(1)
	b.Set(2) // within 100 ms of the last draw: not drawn
	now = now.Add(150 * time.Millisecond)
	b.Set(100)
	io.WriteString(term, "a log line\n")
	b.Set(200) // the total is always drawn
	b.Finish()
	io.WriteString(term, "after\n")
	bar50 := "delivering [###############               ] 100/200  50%"
	want := "\rdelivering [                              ] 1/200   0%" +
		"\r" + bar50 +
		"\r\033[Ka log line\n" + bar50 +
		"\rdelivering [##############################] 200/200 100%" +
		"\n" + "after\n"
	if got := out.String(); got != want {
		t.Errorf("terminal got\n%q\nwant\n%q", got, want)
	}
}

func TestNilAndUndrawnBar(t *testing.T) {
	var b *Bar
	b.Set(1)
	b.Step(1, 2)
	b.Finish() // no panic, nothing to draw on

	var out bytes.Buffer
	New(NewTerminal(&out), "x", 0).Finish()
	if out.Len() != 0 {
		t.Errorf("a bar never set drew %q; want nothing", out.String())
	}
}
