package crlf

import (
	"bytes"
	"strings"
	"testing"
)

func TestWriter(t *testing.T) {
	tests := []struct {
		chunks []string
		want   string // after Close
	}{
		{[]string{"a\nb\n"}, "a\r\nb\r\n"},
		{[]string{"a\r\nb\r\n"}, "a\r\nb\r\n"},
		{[]string{"a\r", "\nb\n"}, "a\r\nb\r\n"},
		{[]string{"a", "\n", "\n"}, "a\r\n\r\n"},
		{[]string{"\n"}, "\r\n"},
		{[]string{"a\rb"}, "a\r\nb\r\n"},           // a lone CR ends a line
		{[]string{"a\r\rb\r"}, "a\r\n\r\nb\r\n"},   // so does each of two
		{[]string{"a\r\r\nb\r\r\n"}, "a\r\nb\r\n"}, // CR CR LF: one line ending
		{[]string{"a\r", "\r", "\nb\r\r\r\n"}, "a\r\nb\r\n"},
		{[]string{"a\r", "\r", "b"}, "a\r\n\r\nb\r\n"},
		{[]string{"a\r\r"}, "a\r\n\r\n"},
		{[]string{"Subject: x\r\r\nFrom: y\r\r\n\r\r\nbody\r\r\n"}, "Subject: x\r\nFrom: y\r\n\r\nbody\r\n"},
		{[]string{"a\n.\rb"}, "a\r\n.\r\nb\r\n"}, // the smuggler's "\n.\r"
		{[]string{"no end"}, "no end\r\n"},
		{[]string{""}, ""},
	}
	for _, tt := range tests {
		var b bytes.Buffer
		w := NewWriter(&b)
		for _, c := range tt.chunks {
			if n, err := w.Write([]byte(c)); n != len(c) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", c, n, err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if b.String() != tt.want {
			t.Errorf("Writer(%q) = %q; want %q", tt.chunks, b.String(), tt.want)
		}
		// Bytes follows the same rule, and adds no final line ending.
		whole := strings.Join(tt.chunks, "")
		want := tt.want
		if !strings.HasSuffix(whole, "\n") && !strings.HasSuffix(whole, "\r") && whole != "" {
			want = strings.TrimSuffix(want, "\r\n")
		}
		if got := string(Bytes([]byte(whole))); got != want {
			t.Errorf("Bytes(%q) = %q; want %q", whole, got, want)
		}
	}
}

// TestWriterByteByByte: a CR at the end of one Write and its LF at the
// start of the next are one line ending.
func TestWriterByteByByte(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a\r\nb\r\n", "a\r\nb\r\n"},
		{"a\nb\n", "a\r\nb\r\n"},
		{"a\rb\r", "a\r\nb\r\n"},
		{"a\r\r\nb", "a\r\nb\r\n"},
		{"a\r\r\rb\r\r", "a\r\n\r\n\r\nb\r\n\r\n"},
		{"no end", "no end\r\n"},
		{"", ""},
	} {
		var b bytes.Buffer
		w := NewWriter(&b)
		for i := range len(tc.in) {
			w.Write([]byte{tc.in[i]})
		}
		w.Close()
		if b.String() != tc.want {
			t.Errorf("Writer(%q) byte by byte = %q; want %q", tc.in, b.String(), tc.want)
		}
	}
}

func TestEightBit(t *testing.T) {
	w := NewWriter(&bytes.Buffer{})
	w.Write([]byte("plain\r\n"))
	if w.EightBit() {
		t.Errorf("EightBit() = true for ASCII")
	}
	w.Write([]byte("caf\xc3\xa9\r\n"))
	if !w.EightBit() {
		t.Errorf("EightBit() = false after a byte above 0x7F")
	}
}

func FuzzWriter(f *testing.F) {
	f.Add([]byte("a\r\nb\rc\nd"), uint8(3))
	f.Add([]byte("\r\r\n\n"), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		var b bytes.Buffer
		w := NewWriter(&b)
		k := min(int(cut), len(in))
		w.Write(in[:k])
		// The rest in pieces of 1 to 13 octets, so that line endings
		// fall across Writes every way.
		for rest, step := in[k:], 1+int(cut)%13; len(rest) > 0; {
			n := min(step, len(rest))
			w.Write(rest[:n])
			rest = rest[n:]
		}
		w.Close()
		out := b.Bytes()
		if high := bytes.ContainsFunc(in, func(r rune) bool { return r >= 0x80 }); w.EightBit() != high {
			t.Fatalf("Writer(%q).EightBit() = %v; want %v", in, w.EightBit(), high)
		}
		// Every CR is followed by LF and every LF preceded by CR.
		for i, c := range out {
			if c == '\r' && (i+1 == len(out) || out[i+1] != '\n') || c == '\n' && (i == 0 || out[i-1] != '\r') {
				t.Fatalf("Writer(%q) = %q: a bare line ending at %d", in, out, i)
			}
		}
		// The writer in two pieces and Bytes agree.
		want := Bytes(in)
		if len(want) > 0 && !bytes.HasSuffix(want, []byte("\r\n")) {
			want = append(want, '\r', '\n')
		}
		if !bytes.Equal(out, want) {
			t.Fatalf("Writer(%q) = %q; Bytes = %q", in, out, want)
		}
	})
}
