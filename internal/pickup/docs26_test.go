package pickup

import (
	"strings"
	"testing"
)

// TestDocs26HeaderRecipientsError: docs/sendmail.md says that under -t a
// header recipient that does not parse is refused, naming the field. The
// refusal read "To header \"\\\"bad\": mail: missing word in phrase: mail:
// unclosed quoted-string", net/mail's text with its package prefixes.
func TestDocs26HeaderRecipientsError(t *testing.T) {
	for _, c := range []struct{ header, want string }{
		{"To: \"bad\n", `pickup: To header "\"bad" is not a list of addresses (missing word in phrase: unclosed quoted-string)`},
		{"Cc: a@@b\n", `pickup: Cc header "a@@b" is not a list of addresses (missing '@' or angle-addr)`},
	} {
		_, err := Parse([]byte(c.header + "\nbody\n")).HeaderRecipients()
		if err == nil || err.Error() != c.want {
			t.Errorf("HeaderRecipients() of %q = %v; want %s", c.header, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "mail: ") {
			t.Errorf("HeaderRecipients() of %q = %v; want no net/mail prefix", c.header, err)
		}
	}
}
