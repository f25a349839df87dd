package companion

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestDocs26ProblemsWords: postfix-enforcer refused "-m 'not an
// address'" with net/mail's "mail: no angle-addr" and "--smtp nohost"
// with net's "address nohost: missing port in address", the parsers' own
// words; and it took "--smtp 127.0.0.1:99999". Each now says what to
// write.
func TestDocs26ProblemsWords(t *testing.T) {
	c := &Config{}
	c.BanWidth.IPv4, c.BanWidth.IPv6 = 32, 64
	for _, tt := range []struct{ smtp, mailTo, want string }{
		{"nohost", "", `--smtp "nohost": want HOST:PORT, such as 127.0.0.1:25`},
		{"127.0.0.1:99999", "", `--smtp "127.0.0.1:99999": port 99999 is out of range 1-65535`},
		{"127.0.0.1:25", "not an address", `-m "not an address" is not an address: write one, admin@example.org, or a local user such as root`},
	} {
		c.SMTP, c.MailTo = tt.smtp, tt.mailTo
		if got := c.Problems(); !slices.Equal(got, []string{tt.want}) {
			t.Errorf("Problems() with --smtp %q -m %q: %s", tt.smtp, tt.mailTo, cmp.Diff([]string{tt.want}, got))
		}
	}
	c.SMTP, c.MailTo = "127.0.0.1:25", "root"
	if got := c.Problems(); len(got) != 0 {
		t.Errorf("Problems() with --smtp 127.0.0.1:25 -m root = %q; want none", got)
	}
}
