package headercheck

import (
	"strings"
	"testing"
)

// TestRevDur3RedirectTargetIsAnAddress: a REDIRECT or BCC target becomes
// an envelope recipient, written into the spool after the client heard
// 250. A target that was no envelope address ("john smith@example.net",
// which has an @ but a space outside quotes) was taken: the message was
// accepted, its envelope could not be read back, and it was never
// delivered (quarantined at the next start). Such a target is refused
// when the table is read, as access(5)'s REDIRECT is, and one made by a
// substitution from the message's own header (BCC $1) is ignored with a
// problem logged, as cleanup(8) ignores a bad REDIRECT target.
func TestRevDur3RedirectTargetIsAnAddress(t *testing.T) {
	path := writeTable(t, "checks", "/^A:/ REDIRECT john smith@example.net\n/^B:/ BCC <a@example.net> x\n")
	_, err := Open("pcre:"+path, "")
	if err == nil || !strings.Contains(err.Error(), "1: REDIRECT requires user@domain") || !strings.Contains(err.Error(), "2: BCC requires user@domain") {
		t.Errorf("Open = %v; want both targets refused", err)
	}

	c := openChecks(t, "/^X-Bcc: (.*)$/ BCC $1\n/^X-Redirect: (.*)$/ REDIRECT $1\n", "")
	_, res := apply(t, c, crlf("X-Bcc: john smith@example.com", "X-Redirect: a@b@example.com", "X-Bcc: ok@example.com", "", "body", ""))
	if len(res.BCC) != 1 || res.BCC[0] != "ok@example.com" || res.Redirect != "" || len(res.Problems) != 2 {
		t.Errorf("Result = %+v; want only ok@example.com added, and two problems", res)
	}
}
