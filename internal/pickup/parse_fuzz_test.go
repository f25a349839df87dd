package pickup

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/crlf"
)

// FuzzParseMessage reads arbitrary bytes as a message a local user pipes
// to sendmail: the header fields and the body, laid end to end (with the
// blank line between them, if there was one), are the input with CRLF
// line ends, less a leading mbox "From " line; and qualifying does not
// panic.
func FuzzParseMessage(f *testing.F) {
	for _, s := range []string{
		"Subject: a\n\nbody\n", "From a@b Mon Dec  7\nTo: x\n y\n\nb", "To: a,\r\n\tb\r\nCc: c\r\n\r\n", " lead\nX: y\n",
		"not a header\nX: y\n", "X: y", "", "\n", "\r", "X:\rY: z\r\r", "From \n", "From x", ":bad\n", "X\x00: y\n\n",
		"Subject: a\n" + strings.Repeat(" b\n", 2000) + "\nbody\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		m := Parse(raw)
		norm := crlf.Bytes(raw)
		if len(norm) > 0 && !bytes.HasSuffix(norm, []byte("\r\n")) {
			norm = append(norm, "\r\n"...)
		}
		if bytes.HasPrefix(norm, []byte("From ")) {
			norm = norm[bytes.Index(norm, []byte("\r\n"))+2:]
		}
		var got []byte
		for _, fl := range m.fields {
			if fl.name == "" || !strings.HasSuffix(fl.raw, "\r\n") || !strings.HasPrefix(fl.raw, fl.name) {
				t.Fatalf("Parse(%q): field %q named %q", raw, fl.raw, fl.name)
			}
			got = append(got, fl.raw...)
		}
		if bytes.HasPrefix(norm[len(got):], []byte("\r\n")) && len(m.body) == len(norm)-len(got)-2 {
			got = append(got, "\r\n"...)
		}
		got = append(got, m.body...)
		if !bytes.Equal(got, norm) {
			t.Fatalf("Parse(%q): fields and body are %q; want %q", raw, got, norm)
		}
		m.qualify("example.org")
	})
}

// TestFuzz26LongHeaderField: a header field of 100,000 continuation lines
// (300 KB) parses at once; each line was appended to a string, which took
// 14 s, and a few megabytes would have kept sendmail busy for hours.
func TestFuzz26LongHeaderField(t *testing.T) {
	raw := "Subject: a\n" + strings.Repeat(" b\n", 100000) + "\nbody\n"
	start := time.Now()
	m := Parse([]byte(raw))
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Parse of a 100,000-line field took %v", d)
	}
	if len(m.fields) != 1 || len(m.fields[0].raw) != len(raw)-len("\nbody\n")+100001 {
		t.Errorf("Parse: %d fields, the first %d bytes", len(m.fields), len(m.fields[0].raw))
	}
}
