package eightbit

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// TestBB26MessageGlobalWith8BitHeaderIsEncoded: a message/global part
// (RFC 6532) whose own header holds UTF-8 went into the walk as a
// message/rfc822 does, and its 8-bit header, which no part encoding can
// reach from inside, went byte for byte to an upstream without 8BITMIME
// (RFC 6152 section 3). Unlike message/rfc822, message/global may take
// base64 or quoted-printable (RFC 6532 section 3.5), so it is converted
// as a leaf: base64, and decoding gives the part back unchanged.
func TestBB26MessageGlobalWith8BitHeaderIsEncoded(t *testing.T) {
	inner := "From: j\xc3\xb6rg@example.org\r\nSubject: gr\xc3\xbc\xc3\x9fe\r\n\r\nhi\r\n"
	msg := "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n" +
		"--B\r\nContent-Type: text/plain\r\n\r\nseven bits\r\n" +
		"--B\r\nContent-Type: message/global\r\n\r\n" + inner + "--B--\r\n"
	var out bytes.Buffer
	if err := downgradeAll(&out, msg); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if eightBitIn(out.Bytes()) {
		t.Fatalf("downgraded message still holds 8-bit octets:\n%s", got)
	}
	const head = "--B\r\nContent-Type: message/global\r\nContent-Transfer-Encoding: base64\r\n\r\n"
	i := strings.Index(got, head)
	if i < 0 {
		t.Fatalf("no base64 message/global part in\n%s", got)
	}
	enc := got[i+len(head):]
	enc = enc[:strings.Index(enc, "--B--")]
	dec, err := base64.StdEncoding.DecodeString(strings.NewReplacer("\r", "", "\n", "").Replace(enc))
	if err != nil {
		t.Fatal(err)
	}
	// The part's body ends before the CRLF that belongs to the delimiter.
	if want := strings.TrimSuffix(inner, "\r\n"); string(dec) != want {
		t.Errorf("message/global decodes to %q; want %q", dec, want)
	}
	if !strings.HasPrefix(got, "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nseven bits\r\n") {
		t.Errorf("the 7-bit parts changed:\n%s", got)
	}
}
