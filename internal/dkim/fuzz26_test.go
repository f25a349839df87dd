package dkim

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

// TestFuzz26LongFromField: a From field of 100,000 continuation lines
// (300 KB, a client's to write) is read at once; each line was appended
// to the value's string, which took time quadratic in the lines.
func TestFuzz26LongFromField(t *testing.T) {
	msg := "From: a@example.org\r\n" + strings.Repeat(" b\r\n", 100000) + "Subject: x\r\n\r\nbody\r\n"
	start := time.Now()
	_, info, err := readHeader(bufio.NewReader(strings.NewReader(msg)))
	if d := time.Since(start); err != nil || d > 2*time.Second {
		t.Fatalf("readHeader of a 100,000-line From: %v after %v", err, d)
	}
	if want := "a@example.org" + strings.Repeat(" b", 100000); info.from != want || len(info.names) != 2 {
		t.Errorf("readHeader: From %d bytes, %d names; want %d bytes, 2 names", len(info.from), len(info.names), len(want))
	}
}
