package companion

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/postfixlog"
)

// TestGmail24CensoredTabAfterGsmtp: Gmail's reply whose lines end in
// whitespace with a tab is logged by Postfix with the tab censored as '?'
// ("... - gsmtp  ?"). postfix-enforcer took only a reply ending in
// "gsmtp" for Gmail's and dropped this one silently: the spammer was not
// banned, nor was anything reported. It is read as Gmail's reply now.
func TestGmail24CensoredTabAfterGsmtp(t *testing.T) {
	dir := t.TempDir()
	for i, c := range []struct{ reply, want string }{
		{"550-5.7.1 [192.0.2.25 12] Our system has detected that this message is likely  ? 550-5.7.1 unsolicited mail. To reduce the amount of spam sent to Gmail.  ? 550 5.7.1 a1si2 - gsmtp  ?", "would-ban"},
		{"550 5.7.1 [192.0.2.25 12] Our system has detected that this message is likely unsolicited mail. a1si3 - gsmtp?", "would-ban"},
		{"550 5.7.1 [192.0.2.25 12] Our system has detected that this message is likely unsolicited mail. a1si3 - not-gsmtp?x", ""},
	} {
		q := fmt.Sprintf("5C%08X", i)
		log := fmt.Sprintf("Dec  7 03:00:01 mx1 postfix/smtpd[100]: %s: client=host.example[203.0.113.4]\n", q) +
			fmt.Sprintf("Dec  7 03:00:01 mx1 postfix/qmgr[102]: %s: from=<alice@example.com>, size=900, nrcpt=1 (queue active)\n", q) +
			fmt.Sprintf("Dec  7 03:00:03 mx1 postfix/smtp[105]: %s: to=<bob@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=2, delays=0/0/1/1, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: %s (in reply to end of DATA command))\n", q, c.reply)
		var out strings.Builder
		co := New(Options{Test: true, SenderAccess: filepath.Join(dir, "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
			enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{Reinjection: postfixlog.ReinjectNever},
			nil, maillog.New(&out), nil)
		got := runLog(t, co, &out, log)
		switch {
		case c.want == "" && len(got) != 0:
			t.Errorf("%q: %q; want nothing (not Gmail's)", c.reply, got)
		case c.want != "" && (len(got) != 1 || !strings.HasPrefix(got[0], c.want+" "+q+" ")):
			t.Errorf("%q: %q; want %s\n%s", c.reply, got, c.want, out.String())
		}
	}
}
