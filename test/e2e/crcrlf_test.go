package e2e

import (
	"bytes"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestCRCRLFKeepsHeader: a client that converts its text to CRLF twice
// ends every line with CR CR LF. Each bare CR was made a line ending of
// its own, so the first header line was followed by an empty line: the
// rest of the header went into the body, where the upstream (Gmail) finds
// no From. A run of CRs before an LF is now one line ending, and the
// header arrives whole, as it does through Postfix; the text ends at the
// final dot after CR CR LF (fbbcd22).
func TestCRCRLFKeepsHeader(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	text := "From: alice@example.org\r\r\nTo: bob@example.net\r\r\nSubject: converted twice\r\r\n\r\r\nfirst line\r\r\nsecond line\r\r\n.\r\n"
	if rep := sendText(t, r.addr(), "alice@example.org", []string{text}, 0); rep.code() != 250 {
		t.Fatalf("final reply %q; want 250", rep)
	}
	tx := up.WaitTransactions(t, 1, 15*time.Second)[0]
	header, body, _ := bytes.Cut(tx.Data, []byte("\r\n\r\n"))
	for _, f := range []string{"\r\nFrom: alice@example.org\r\n", "\r\nTo: bob@example.net\r\n", "\r\nSubject: converted twice"} {
		if !bytes.Contains(append([]byte("\r\n"), header...), []byte(f)) {
			t.Errorf("the upstream's header lacks %q:\n%s", f[2:], header)
		}
	}
	if string(body) != "first line\r\nsecond line\r\n" {
		t.Errorf("the upstream's body = %q; want the two lines", body)
	}
}
