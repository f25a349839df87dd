package enforce

import (
	"strings"
	"testing"
)

// TestGM25KeyFolding: Gmail folds its reply into lines by width; on a
// retry the relay's address in the text ("[192.0.2.25 15]", or an IPv6
// one from a relay with both) and Gmail's numbers change length, and the
// lines break at other words. The same deferral must have the same Key.
func TestGM25KeyFolding(t *testing.T) {
	text := "Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. Please visit https://support.google.com/mail/?p=UnsolicitedRateLimitError to review our Bulk Email Senders Guidelines."
	var keys []string
	var replies []string
	for i, pre := range []string{"[192.0.2.25 15] ", "[2001:db8:ffff:1234:5678::9 7] "} {
		for _, width := range []int{72, 50} {
			lines := gmailLines(421, "4.7.0", pre+text, width)
			lines[len(lines)-1] = strings.Replace(lines[len(lines)-1], "a640c23a62f3a", []string{"x1", "y22222"}[i], 1)
			s := strings.Join(lines, "\r\n")
			u, err := ParseReply(s)
			if err != nil {
				t.Fatal(err)
			}
			v := DefaultRules().Classify(u)
			keys = append(keys, Key(v, "a@gmail.com", u.Reply))
			replies = append(replies, s)
		}
	}
	for i := range keys {
		if keys[i] != keys[0] {
			t.Errorf("Key(%q) = %q; want %q, the Key of %q", replies[i], keys[i], keys[0], replies[0])
		}
	}
}
