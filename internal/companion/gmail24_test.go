package companion

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestGmail24RetryWithOtherNumbers: Postfix retries a deferred message,
// and Gmail's reply to the retry names the same domain with another
// number ("[spamdom.example 31]" after "[... 30]"), the relay's address
// with another ("[192.0.2.25 16]"), and another session id. The same
// deferral was acted on again at every retry: a second block-domain line
// (and report mail) at once, a second ban line once the minute that binds
// a ban to one refusal had passed.
func TestGmail24RetryWithOtherNumbers(t *testing.T) {
	dir := t.TempDir()
	const mx = "gmail-smtp-in.l.google.com[142.250.102.27]"
	var out strings.Builder
	co := New(Options{Test: true, SenderAccess: filepath.Join(dir, "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
		enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{Reinjection: postfixlog.ReinjectNever},
		nil, maillog.New(&out), nil)
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	co.now = func() time.Time { return now }
	var got []string
	for k, num := range []int{30, 31, 17} {
		now = now.Add(5 * time.Minute) // Postfix's minimal backoff
		log := "Dec  7 10:00:01 mx1 postfix/smtpd[100]: 6D00000001: client=a.example[203.0.113.77]\n" +
			"Dec  7 10:00:01 mx1 postfix/smtpd[100]: 6D00000002: client=b.example[203.0.113.78]\n"
		if k > 0 {
			log = ""
		}
		log += fmt.Sprintf("Dec  7 10:0%d:02 mx1 postfix/qmgr[102]: 6D00000001: from=<a@spam.example>, size=400, nrcpt=1 (queue active)\n", k) +
			fmt.Sprintf("Dec  7 10:0%d:03 mx1 postfix/smtp[103]: 6D00000001: to=<v@gmail.com>, relay=%s:25, delay=1, delays=0/0/0/1, dsn=4.7.0, status=deferred (host %s said: 421-4.7.0 [192.0.2.25 %d] Our system has detected that this message is suspicious due to the very low reputation of the sending IP address. 421 4.7.0 s%dsi%d - gsmtp (in reply to end of DATA command))\n", k, mx, mx, num-15, k, k) +
			fmt.Sprintf("Dec  7 10:0%d:02 mx1 postfix/qmgr[102]: 6D00000002: from=<a@spamdom.example>, size=400, nrcpt=1 (queue active)\n", k) +
			fmt.Sprintf("Dec  7 10:0%d:03 mx1 postfix/smtp[103]: 6D00000002: to=<v@gmail.com>, relay=%s:25, delay=1, delays=0/0/0/1, dsn=4.7.28, status=deferred (host %s said: 421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain [spamdom.example %d]. 421 4.7.28 t%dsi%d - gsmtp (in reply to end of DATA command))\n", k, mx, mx, num, k, k)
		got = runLog(t, co, &out, log) // every line so far
	}
	if len(got) != 2 || !strings.HasPrefix(got[0], "would-ban 6D00000001 ") || !strings.HasPrefix(got[1], "would-block-domain 6D00000002 ") {
		t.Errorf("actions %q; want one ban and one block, at the first attempt only\n%s", got, out.String())
	}
}
