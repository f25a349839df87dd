package eightbit

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"
)

// mixed8bit is a MIME message with 8-bit text at every level: a Latin-1
// text part, a UTF-8 HTML part, a binary part, a base64 attachment that
// must come through untouched, and a forwarded message/rfc822 whose own
// text is 8-bit.
const mixed8bit = "From: a@example.com\r\nTo: b@example.net\r\nSubject: mixed\r\nMIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"OUTER\"\r\n\r\n" +
	"preamble\r\n--OUTER\r\n" +
	"Content-Type: multipart/alternative; boundary=\"ALT\"\r\n\r\n" +
	"--ALT\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
	"Gr\xfc\xdfe aus K\xf6ln\r\n.leading dot and = sign\r\n" +
	"--ALT\r\nContent-Type: text/html; charset=utf-8\r\n\r\n" +
	"<p>Gr\xc3\xbc\xc3\x9fe</p>\r\n" +
	"--ALT--\r\n" +
	"--OUTER\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n" +
	"\x00\x01\xff\xfe\n\r\x80" +
	"\r\n--OUTER\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
	"JVBERi0xLjQKJcfsj6IK\r\n" +
	"--OUTER\r\nContent-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
	"Subject: forwarded\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
	"na\xc3\xafve caf\xc3\xa9\r\n" +
	"--OUTER--\r\nepilogue\r\n"

// leaves returns every leaf part of a message as (media type, decoded
// body), depth first, following message/rfc822.
func leaves(t *testing.T, msg string) [][2]string {
	t.Helper()
	br := bufio.NewReader(strings.NewReader(msg))
	h, err := textproto.ReadHeader(br)
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	var walk func(h textproto.Header, body io.Reader)
	walk = func(h textproto.Header, body io.Reader) {
		mt, params, _ := mime.ParseMediaType(h.Get("Content-Type"))
		switch {
		case strings.HasPrefix(mt, "multipart/"):
			mr := textproto.NewMultipartReader(body, params["boundary"])
			for {
				p, err := mr.NextPart()
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				walk(p.Header, p)
			}
		case mt == "message/rfc822":
			ib := bufio.NewReader(body)
			ih, err := textproto.ReadHeader(ib)
			if err != nil {
				t.Fatal(err)
			}
			walk(ih, ib)
		default:
			var r io.Reader = body
			switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
			case "quoted-printable":
				r = quotedprintable.NewReader(body)
			case "base64":
				r = base64.NewDecoder(base64.StdEncoding, body)
			}
			b, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, [2]string{mt, string(b)})
		}
	}
	walk(h, br)
	return out
}

// convert plans and converts msg as the scheduler does; converted is
// false when there was nothing to convert (out is then the message).
func convert(t testing.TB, msg string) (out string, converted bool) {
	t.Helper()
	plan, ok, err := planDowngrade(strings.NewReader(msg))
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		return msg, false
	}
	var b bytes.Buffer
	if err := downgrade(&b, strings.NewReader(msg), plan); err != nil {
		t.Fatal(err)
	}
	return b.String(), true
}

// TestDowngrade: every part decodes to what it was, and nothing 8-bit
// is left.
func TestDowngrade(t *testing.T) {
	got, _ := convert(t, mixed8bit)
	if has8bit([]byte(got)) {
		t.Errorf("8-bit bytes left:\n%s", got)
	}
	want := leaves(t, mixed8bit)
	after := leaves(t, got)
	if len(after) != len(want) {
		t.Fatalf("%d leaf parts after; want %d", len(after), len(want))
	}
	for i := range want {
		// Quoted-printable text ends its last line with CRLF as it was;
		// compare the decoded bytes.
		if after[i] != want[i] {
			t.Errorf("part %d: %q; want %q", i, after[i], want[i])
		}
	}
	if !strings.Contains(got, "\r\nJVBERi0xLjQKJcfsj6IK\r\n") {
		t.Errorf("the base64 attachment was re-encoded:\n%s", got)
	}
	if !strings.Contains(got, "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n") &&
		!strings.Contains(got, "Content-Transfer-Encoding: 7bit\r\nContent-Type: message/rfc822\r\n") {
		t.Errorf("the message/rfc822 part still says 8bit:\n%s", got)
	}
	// Without MIME-Version there is nothing to label: as it is.
	plain := "Subject: old\r\n\r\nGr\xfc\xdfe\r\n"
	if out, converted := convert(t, plain); converted || out != plain {
		t.Errorf("non-MIME message: %q, converted %v; want it unchanged", out, converted)
	}
}

// TestConverted: Converted opens the message three times, declares the
// size it sends, sends what the conversion makes, and reports a message
// with nothing to convert as such.
func TestConverted(t *testing.T) {
	opens := 0
	open := func(msg string) func() (io.ReadCloser, error) {
		return func() (io.ReadCloser, error) {
			opens++
			return io.NopCloser(strings.NewReader(msg)), nil
		}
	}
	r, size, stop, ok, err := Converted(open(mixed8bit))
	if err != nil || !ok {
		t.Fatalf("Converted(mixed8bit) = ok %v, err %v", ok, err)
	}
	got, _ := io.ReadAll(r)
	stop()
	want, _ := convert(t, mixed8bit)
	if string(got) != want || size != int64(len(want)) || opens != 3 {
		t.Errorf("Converted: %d bytes (size %d, %d opens); want %d bytes as convert makes them, 3 opens", len(got), size, opens, len(want))
	}
	if _, _, _, ok, err := Converted(open("MIME-Version: 1.0\r\n\r\nplain\r\n")); ok || err != nil {
		t.Errorf("a 7-bit message: ok %v, err %v; want nothing to convert", ok, err)
	}
	_, _, _, ok, err = Converted(func() (io.ReadCloser, error) { return nil, io.ErrUnexpectedEOF })
	if ok || err == nil {
		t.Errorf("an unreadable message: ok %v, err %v; want the error", ok, err)
	}
}

// FuzzDowngrade: the conversion never panics, leaves nothing that a
// second conversion would convert, and the counting pass counts what is
// sent.
func FuzzDowngrade(f *testing.F) {
	for _, s := range []string{mixed8bit, "Subject: x\r\n\r\n\xff", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n\r\n\xe9\r\n--b--\r\n",
		"MIME-Version: 1.0\r\nContent-Type: message/rfc822\r\n\r\nMIME-Version: 1.0\r\n\r\n\xe9", "MIME-Version: 1.0\r\nContent-Transfer-Encoding: binary\r\n\r\n\x00\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, converted := convert(t, string(in))
		if !converted {
			return
		}
		if _, again, err := planDowngrade(strings.NewReader(out)); err != nil || again {
			t.Fatalf("the conversion of %q left parts to convert (%v):\n%q", in, err, out)
		}
		var n countWriter
		plan, _, _ := planDowngrade(bytes.NewReader(in))
		if err := downgrade(&n, bytes.NewReader(in), plan); err != nil || int(n) != len(out) {
			t.Fatalf("the counting pass gave %d octets, the conversion %d", n, len(out))
		}
	})
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}

// TestDowngradeReview35: from a second review of the conversion, each
// case fails on the code before it.
func TestDowngradeReview35(t *testing.T) {
	// A single-part message ending in CRLF gains no empty line.
	msg := "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf\xc3\xa9 \r\nline two\r\n"
	out, _ := convert(t, msg)
	if got := leaves(t, out); len(got) != 1 || got[0][1] != "caf\xc3\xa9 \r\nline two\r\n" {
		t.Errorf("single part decodes to %q; want it as it was", got)
	}
	// Nothing 8-bit reaches the upstream: a boundary with a trailing
	// blank, a header line that is no field, an encoding with a comment,
	// 8-bit under a base64 label, 8-bit in the preamble and epilogue.
	for name, msg := range map[string]string{
		"boundary with a blank": "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"B \"\r\n\r\n--B \r\nContent-Type: text/plain\r\n\r\ncaf\xc3\xa9\r\n--B --\r\n",
		"broken header line":    "X-Broken header without colon\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\ncaf\xc3\xa9\r\n",
		"encoding comment":      "MIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 8bit (utf-8)\r\n\r\ncaf\xc3\xa9\r\n",
		"8-bit labelled base64": "MIME-Version: 1.0\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\ncaf\xc3\xa9\r\n",
		"mbox From line":        "From a@b.example Mon Jan  1 12:00:00 2024\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\ncaf\xc3\xa9\r\n",
		"leading continuation":  " folded junk\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\ncaf\xc3\xa9\r\n",
		"8-bit field name":      "X-\xc3\xa9: y\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\ncaf\xc3\xa9\r\n",
		"preamble, epilogue":    "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\nPr\xc3\xa9ambule\r\n--B\r\n\r\nx\r\n--B--\r\n\xc3\xa9pilogue\r\n",
	} {
		out, converted := convert(t, msg)
		if !converted || has8bit([]byte(out)) {
			t.Errorf("%s: converted %v, 8-bit left in %q", name, converted, out)
		}
	}
}

// TestDowngradeKeepsDecoding: a part labelled quoted-printable or base64
// that holds 8-bit octets decodes to what it did: quoted-printable gets
// each such octet as =XX, base64 loses them (its readers skip them).
func TestDowngradeKeepsDecoding(t *testing.T) {
	for name, msg := range map[string]string{
		"quoted-printable": "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nna=C3=AFve caf\xc3\xa9 soft=\r\nbreak\r\n",
		"base64":           "MIME-Version: 1.0\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0x\xa0LjQK\r\n",
	} {
		out, converted := convert(t, msg)
		if !converted || has8bit([]byte(out)) {
			t.Errorf("%s: converted %v, 8-bit left in %q", name, converted, out)
		}
		want := leaves(t, strings.ReplaceAll(msg, "\xa0", ""))
		if got := leaves(t, out); len(got) != 1 || got[0] != want[0] {
			t.Errorf("%s: decodes to %q; want %q", name, got, want)
		}
	}
}
