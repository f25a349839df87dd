package eightbit

import (
	"bytes"
	"io"
	"runtime"
	"strings"
	"testing"
)

// A message declared 8BITMIME whose content is all 7-bit needs no
// conversion: it must go byte for byte.
func TestReview33SevenBitUnchanged(t *testing.T) {
	msg := "From: a@example.com\r\nMIME-Version: 1.0\r\n" +
		"Content-Type: multipart/mixed; boundary=\"B\"\r\n\r\n" +
		"This is a multi-part message in MIME format.\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\nhello\r\n" +
		"--B--\r\nepilogue\r\n"
	var out bytes.Buffer
	if err := downgradeAll(&out, msg); err != nil {
		t.Fatal(err)
	}
	if out.String() != msg {
		t.Errorf("a 7-bit message was changed:\n got %q\nwant %q", out.String(), msg)
	}
}

// 8-bit in one part only: the other bytes (preamble, epilogue, the 7-bit
// parts) go as they were.
func TestReview33PreambleEpilogueKept(t *testing.T) {
	msg := "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B\"\r\n\r\n" +
		"preamble\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf\xc3\xa9\r\n--B--\r\nepilogue\r\n"
	var out bytes.Buffer
	if err := downgradeAll(&out, msg); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"preamble", "epilogue"} {
		if !strings.Contains(out.String(), s) {
			t.Errorf("%s lost: %q", s, out.String())
		}
	}
}

// Nested multipart: the inner close and the outer boundary gain a blank line.
func TestReview33NestedBytes(t *testing.T) {
	msg := "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"O\"\r\n\r\n" +
		"--O\r\nContent-Type: multipart/alternative; boundary=\"I\"\r\n\r\n" +
		"--I\r\nContent-Type: text/plain\r\n\r\nx\r\n--I--\r\n" +
		"--O--\r\n"
	var out bytes.Buffer
	if err := downgradeAll(&out, msg); err != nil {
		t.Fatal(err)
	}
	if out.String() != msg {
		t.Errorf("changed:\n got %q\nwant %q", out.String(), msg)
	}
}

// Memory: one 8-bit text part of 50 MB.
func TestReview33Memory(t *testing.T) {
	body := bytes.Repeat([]byte("caf\xc3\xa9 "+strings.Repeat("x", 60)+"\r\n"), 50<<20/68)
	msg := append([]byte("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"), body...)
	runtime.GC()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	var n countWriter
	if err := downgradeBytes(&n, msg); err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&b)
	t.Logf("message %d MB, output %d MB, allocated %d MB in one pass (sendLeg makes two)",
		len(msg)>>20, int64(n)>>20, (b.TotalAlloc-a.TotalAlloc)>>20)
	if alloc := b.TotalAlloc - a.TotalAlloc; alloc > uint64(len(msg)) {
		t.Errorf("one pass allocated %d MB for a %d MB message: the part is held in memory", alloc>>20, len(msg)>>20)
	}
}

// downgradeAll is the conversion as the scheduler runs it: the plan, then
// the conversion, or the message as it is when there is nothing to do.
func downgradeAll(w io.Writer, msg string) error {
	plan, ok, err := planDowngrade(strings.NewReader(msg))
	if err != nil {
		return err
	}
	if !ok {
		_, err := io.WriteString(w, msg)
		return err
	}
	return downgrade(w, strings.NewReader(msg), plan)
}

// downgradeBytes is downgradeAll for a message in a byte slice, without
// a copy of it.
func downgradeBytes(w io.Writer, msg []byte) error {
	plan, ok, err := planDowngrade(bytes.NewReader(msg))
	if err != nil || !ok {
		return err
	}
	return downgrade(w, bytes.NewReader(msg), plan)
}
