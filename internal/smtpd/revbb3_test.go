package smtpd

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/crlf"
	"github.com/relaykeeper/relaykeeper/test/harness"
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

// TestRevBB3ResetDuringChunks: RSET or EHLO between the chunks of a BDAT
// transaction, with the next transaction pipelined behind it, many times
// over: the next transaction is accepted whole, and the aborted one
// leaves nothing. Under -race: go-smtp runs a BDAT transaction's Data on
// a goroutine of its own and resets the session on its own goroutine;
// the aborted Data's deferred stop of the transaction timer raced with
// the reset's and with the next MAIL's start of a new timer, and could
// stop the next transaction's timer (or take a nil timer).
func TestRevBB3ResetDuringChunks(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.TransactionTimeout = time.Minute })
	const rounds = 30
	resetDuringChunks(t, ts.addr, rounds)
	if n := len(spooled(t, ts.spool)); n != rounds {
		t.Errorf("spooled %d; want %d", n, rounds)
	}
	// In proxy mode too.
	proxy, _, _ := startProxy(t, harness.SinkOptions{})
	resetDuringChunks(t, proxy.addr, rounds)
}

func resetDuringChunks(t *testing.T, addr string, rounds int) {
	s := rawDial(t, addr)
	if r := s.cmd("EHLO client.test"); !strings.HasPrefix(r, "250-") {
		t.Fatalf("EHLO: %q", r)
	}
	for i := range rounds {
		abort := []string{"RSET\r\n", "EHLO client.test\r\n"}[i%2]
		s.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nBDAT 5\r\nhello" + abort +
			"MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nBDAT 17 LAST\r\nSubject: kept\r\n\r\n")
		var last string
		for range 7 {
			last = s.reply()
		}
		if !strings.HasPrefix(last, "250 2.0.0 ") {
			t.Fatalf("%s, round %d (%q): %q", addr, i, abort, last)
		}
	}
}
