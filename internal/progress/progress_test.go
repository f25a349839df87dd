package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestBar(t *testing.T) {
	var out bytes.Buffer
	now := time.Unix(0, 0)
	b := New(&out, "delivering", 200)
	b.now = func() time.Time { return now }
	b.Set(1)
	b.Set(2) // within 100 ms of the last draw: not drawn
	now = now.Add(150 * time.Millisecond)
	b.Add(98)
	b.Set(200) // the total is always drawn
	b.Finish()
	want := "\rdelivering [                              ] 1/200   0%" +
		"\rdelivering [###############               ] 100/200  50%" +
		"\rdelivering [##############################] 200/200 100%" +
		"\rdelivering [##############################] 200/200 100%\n"
	if got := out.String(); got != want {
		t.Errorf("bar drew\n%q\nwant\n%q", got, want)
	}
	if n := strings.Count(out.String(), "\r"); n != 4 {
		t.Errorf("drew %d times; want 4", n)
	}
}

func TestNilBar(t *testing.T) {
	var b *Bar
	b.Set(1)
	b.Add(1)
	b.Finish() // no panic, nothing to draw on

	var out bytes.Buffer
	New(&out, "x", 0).Finish()
	if out.Len() != 0 {
		t.Errorf("a bar never set drew %q; want nothing", out.String())
	}
}
