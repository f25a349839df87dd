package eightbit

import (
	"bytes"
	"testing"
)

func TestReview33HeadersByteForByte(t *testing.T) {
	hdr := "DKIM-Signature: v=1; a=rsa-sha256;\r\n\tb=abc\r\nSubject:no-space\r\nX-A:   three\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n"
	msg := hdr + "plain 7-bit\r\n"
	var out bytes.Buffer
	if err := downgradeAll(&out, msg); err != nil {
		t.Fatal(err)
	}
	if out.String() != msg {
		t.Errorf("changed:\n got %q\nwant %q", out.String(), msg)
	}
}

func TestReview33BareCR(t *testing.T) {
	msg := "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nA\rB caf\xc3\xa9\r\n"
	var out bytes.Buffer
	if err := downgradeAll(&out, msg); err != nil {
		t.Fatal(err)
	}
	t.Logf("%q", out.String())
}

func TestReview33MessageGlobalQP(t *testing.T) {
	msg := "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: text/plain; charset=utf-8\r\n\r\ncaf\xc3\xa9\r\n" +
		"--B\r\nContent-Type: message/global\r\nContent-Transfer-Encoding: base64\r\n\r\nU3ViamVjdDogw6kNCg0KYm9keQ0K\r\n--B--\r\n"
	var out bytes.Buffer
	err := downgradeAll(&out, msg)
	t.Logf("err=%v out=%q", err, out.String())
	if err != nil {
		t.Errorf("a base64 message/global (RFC 6532 3.5) makes the whole message unconvertible: %v", err)
	}
}

func TestReview33OctetStream8bit(t *testing.T) {
	raw := "\x89PNG\r\n\x1a\n\x00\x00\rIHDR"
	msg := "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=B\r\n\r\n--B\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + raw + "\r\n--B--\r\n"
	var out bytes.Buffer
	if err := downgradeAll(&out, msg); err != nil {
		t.Fatal(err)
	}
	got := leaves(t, out.String())
	if len(got) != 1 || got[0][1] != raw {
		t.Errorf("image/png decodes to %q; want %q", got[0][1], raw)
	}
}
