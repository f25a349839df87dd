package smtpd

import (
	"bytes"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/crlf"
)

// TestRevBB3HeaderStampObsoleteField: a header field with blanks between
// its name and the colon (RFC 5322 section 4.5.3's obsolete syntax, which
// a reader must accept, and a header field to Postfix's is_header) is a
// header field: the header section does not end there. It did, and the
// relay put its Message-ID and Date and an empty line before it, which
// made that field and every one after it (the Subject) message body.
// A Message-ID or a Date so written counts as one.
func TestRevBB3HeaderStampObsoleteField(t *testing.T) {
	now := time.Date(2026, 12, 5, 1, 2, 3, 0, time.UTC)
	const id, date = "Message-ID: <20261205010203.ID1@relay.test>\r\n", "Date: Sat, 05 Dec 2026 01:02:03 +0000\r\n"
	for _, tc := range []struct{ in, want string }{
		{"From: a@b\r\nSender : c@d\r\nSubject: x\r\n\r\nbody\r\n", "From: a@b\r\nSender : c@d\r\nSubject: x\r\n" + id + date + "\r\nbody\r\n"},
		{"Message-ID\t: <a@b>\r\nDate : y\r\nSubject: x\r\n\r\nbody\r\n", "Message-ID\t: <a@b>\r\nDate : y\r\nSubject: x\r\n\r\nbody\r\n"},
		{"Subject: x\r\nnot a field\r\n", "Subject: x\r\n" + id + date + "\r\nnot a field\r\n"},
		{"Subject: x\r\nX y: z\r\n", "Subject: x\r\n" + id + date + "\r\nX y: z\r\n"},
	} {
		var out bytes.Buffer
		h := &headerStamp{w: &out, id: "ID1", domain: "relay.test", now: now}
		cw := crlf.NewWriter(h)
		cw.Write([]byte(tc.in))
		if err := closeContent(cw, h); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != tc.want {
			t.Errorf("stamp(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}
