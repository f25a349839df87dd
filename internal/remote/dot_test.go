package remote

import (
	"bufio"
	"bytes"
	"math/rand/v2"
	"net/textproto"
	"testing"
	"testing/iotest"

	"github.com/relaykeeper/relaykeeper/internal/crlf"
)

// FuzzDotWriter: dotWriter writes exactly what net/textproto's DotWriter
// writes, whatever the text and however it is cut into Writes, and through
// copyText.
func FuzzDotWriter(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\n\r\nbody\r\n",
		".\r\n..\r\n.x\r\n",
		"a\nb\n.\n",
		"a\r\r\nb\r\r\r\n",
		"a\rb\r",
		"\r\n.\r\n",
		"",
		"no end",
		".",
		"\n",
		"\r",
	} {
		f.Add([]byte(s), uint64(len(s)))
	}
	f.Fuzz(func(t *testing.T, in []byte, seed uint64) {
		var want bytes.Buffer
		tw := textproto.NewWriter(bufio.NewWriter(&want)).DotWriter()
		tw.Write(in)
		tw.Close()

		rnd := rand.New(rand.NewPCG(seed, 1))
		var got bytes.Buffer
		d := &dotWriter{}
		d.reset(bufio.NewWriterSize(&got, 16+rnd.IntN(64)))
		for rest := in; len(rest) > 0; {
			n := min(len(rest), rnd.IntN(20))
			if n, err := d.Write(rest[:n]); err != nil || n != len(rest[:n]) {
				t.Fatalf("Write = %d, %v", n, err)
			}
			rest = rest[n:]
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("dotWriter(%q) = %q; textproto writes %q", in, got.Bytes(), want.Bytes())
		}

		// copyText, reading into the bufio.Writer's free space, with the
		// scratch buffer of an earlier message: textproto's output for
		// the text with its line endings made CRLF by crlf's rule.
		var norm bytes.Buffer
		cw := crlf.NewWriter(&norm)
		cw.Write(in)
		cw.Close()
		want.Reset()
		tw = textproto.NewWriter(bufio.NewWriter(&want)).DotWriter()
		tw.Write(norm.Bytes())
		tw.Close()
		got.Reset()
		d.reset(bufio.NewWriterSize(&got, 16+rnd.IntN(8<<10)))
		if err := d.copyText(iotest.HalfReader(bytes.NewReader(in))); err != nil {
			t.Fatalf("copyText: %v", err)
		}
		d.Close()
		if !bytes.Equal(got.Bytes(), want.Bytes()) {
			t.Fatalf("dotWriter.copyText(%q) = %q; textproto writes %q", in, got.Bytes(), want.Bytes())
		}
	})
}
