package spool

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// ReadListed reads the envelope in the state the listing gave, and says
// ErrNotFound once the message has moved on, rather than following it:
// the scheduler queues only what is Ready.
func TestReadListed(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := newMessage(t, s, "Subject: x\r\n\r\nhello\r\n")
	ents, err := s.List()
	if err != nil || len(ents) != 1 {
		t.Fatalf("List() = %v, %v; want one entry", ents, err)
	}
	env, err := s.ReadListed(ents[0])
	if err != nil {
		t.Fatalf("ReadListed(%v) = %v", ents[0], err)
	}
	want := testEnvelope()
	want.ID = id
	if diff := cmp.Diff(want, env); diff != "" {
		t.Errorf("ReadListed(%v) differs (-want +got):\n%s", ents[0], diff)
	}
	if err := os.Rename(s.EnvelopePath(id, Ready), s.EnvelopePath(id, Held)); err != nil {
		t.Fatal(err)
	}
	if env, err := s.ReadListed(ents[0]); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadListed(%v) after a move to held = %v, %v; want ErrNotFound", ents[0], env, err)
	}
	if _, err := s.ReadListed(Entry{ID: "../x", State: Ready}); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadListed(../x) = %v; want ErrNotFound", err)
	}
}

// readEnvelopeFile reads a file whole whatever its size against the first
// read's buffer (4096 octets): below, at and just above it, and many times
// over, when the end is found by a read that returns nothing.
func TestReadEnvelopeFile(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 1, 599, 4095, 4096, 4097, 8192, 8193, 70000} {
		name := filepath.Join(dir, "e")
		want := bytes.Repeat([]byte("x"), n)
		if err := os.WriteFile(name, want, 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := readEnvelopeFile(name)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("readEnvelopeFile(%d bytes) = %d bytes, %v; want %d bytes", n, len(got), err, n)
		}
	}
	if _, err := readEnvelopeFile(filepath.Join(dir, "none")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("readEnvelopeFile(none) = %v; want ErrNotExist", err)
	}
}

// An envelope parsed from its bytes is what Unmarshal makes of the same
// text, line endings LF or CRLF, with or without a last newline.
func TestUnmarshalLineEndings(t *testing.T) {
	e := testEnvelope()
	e.Recipients[0].Reply = "451 4.2.0 later"
	crlf := string(e.Marshal())
	want, err := Unmarshal(strings.NewReader(crlf))
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"CRLF":            crlf,
		"LF":              strings.ReplaceAll(crlf, "\r\n", "\n"),
		"no last newline": strings.TrimSuffix(crlf, "\r\n"),
		"blank lines":     strings.ReplaceAll(crlf, "\r\n", "\r\n\r\n"),
	} {
		got, err := unmarshalBytes([]byte(text))
		if err != nil {
			t.Errorf("%s: unmarshalBytes = %v", name, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: unmarshalBytes differs from Unmarshal (-want +got):\n%s", name, diff)
		}
	}
	long := strings.Replace(crlf, "X-Relaykeeper-Helo: client.example", "X-Relaykeeper-Helo: "+strings.Repeat("h", maxEnvelopeLine), 1)
	var pe *ParseError
	if _, err := unmarshalBytes([]byte(long)); !errors.As(err, &pe) {
		t.Errorf("unmarshalBytes(a line over 1 MiB) = %v; want a ParseError", err)
	}
}

// BenchmarkDeliverySide is the spool's share of delivering one queued
// message, without the network: the scan's envelope read, the claim, the
// content read, the removal (no journal, no fsync).
//
//	go test -run XXX -bench DeliverySide -benchmem ./internal/spool/
func BenchmarkDeliverySide(b *testing.B) {
	s, err := Open(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	s.SetSync(false)
	body := "Subject: bench\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 50)
	for range b.N {
		w, err := s.Create(t0)
		if err != nil {
			b.Fatal(err)
		}
		w.Write([]byte(body))
		if err := w.Prepare(testEnvelope()); err != nil {
			b.Fatal(err)
		}
		if err := w.Commit(false); err != nil {
			b.Fatal(err)
		}
	}
	ents, err := s.List()
	if err != nil || len(ents) != b.N {
		b.Fatalf("List() = %d entries, %v; want %d", len(ents), err, b.N)
	}
	buf := make([]byte, 32<<10)
	cpu0 := cpuTime()
	b.ResetTimer()
	for _, e := range ents {
		if _, err := s.ReadListed(e); err != nil {
			b.Fatal(err)
		}
		c, err := s.Claim(e.ID)
		if err != nil {
			b.Fatal(err)
		}
		r, _, err := c.Content()
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Read(buf); err != nil {
				break
			}
		}
		r.Close()
		if err := c.Delete(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
}

// cpuTime is this process's user and system time so far: on a shared
// machine steadier than the wall clock.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
