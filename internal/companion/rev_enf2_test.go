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

// TestRevEnf2NoSanctionBeforeTransaction: Gmail refusing the relay at its
// greeting or EHLO ("refused to talk to me", "in reply to EHLO command")
// has read no message: its words are about the relay's address. Postfix
// logs that refusal once for every message it was about to deliver, so
// postfix-enforcer banned the client of each, innocent senders included
// (and blocked their domains, or encapsulated their mail unsent). The
// relay itself acts on such a refusal only when it is an alert; so does
// the companion now. An alert (the relay's own PTR) is still given.
func TestRevEnf2NoSanctionBeforeTransaction(t *testing.T) {
	var out strings.Builder
	c := revEnf2Companion(t, &out)
	const netblock = "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your IP Netblock [192.0.2.10 34]. To protect our users from spam, mail sent from your IP Netblock has been temporarily rate limited. 421 4.7.28 %s - gsmtp"
	const domainRep421 = "421-4.7.0 [192.0.2.10 15] Our system has detected that this message is suspicious due to the very low reputation of the sending domain. 421 4.7.0 %s - gsmtp"
	const unauth = "421-4.7.26 This email has been rate limited because it is unauthenticated. 421 4.7.26 %s - gsmtp"
	const ptr = "421-4.7.0 The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not match the sending IP. 421 4.7.0 %s - gsmtp"
	deferred := func(q, client, from, to, detail string) string {
		var b strings.Builder
		fmt.Fprintf(&b, "Nov 22 10:00:01 mx1 postfix/smtpd[100]: %s: client=host.example[%s]\n", q, client)
		fmt.Fprintf(&b, "Nov 22 10:00:01 mx1 postfix/qmgr[102]: %s: from=<%s>, size=900, nrcpt=1 (queue active)\n", q, from)
		fmt.Fprintf(&b, "Nov 22 10:00:03 mx1 postfix/smtp[105]: %s: to=<%s>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=2, delays=0/0/1/1, dsn=4.7.0, status=deferred (host gmail-smtp-in.l.google.com[142.250.102.27] %s)\n", q, to, detail)
		return b.String()
	}
	log := deferred("4A0001ABC1", "203.0.113.1", "a@one.example", "u1@gmail.test", "refused to talk to me: "+fmt.Sprintf(netblock, "s1")) +
		deferred("4A0002ABC2", "203.0.113.2", "b@two.example", "u2@gmail.test", "said: "+fmt.Sprintf(netblock, "s2")+" (in reply to EHLO command)") +
		deferred("4A0003ABC3", "203.0.113.3", "c@three.example", "u3@gmail.test", "refused to talk to me: "+fmt.Sprintf(domainRep421, "s3")) +
		deferred("4A0004ABC4", "203.0.113.4", "d@four.example", "u4@gmail.test", "said: "+fmt.Sprintf(unauth, "s4")+" (in reply to STARTTLS command)") +
		deferred("4A0005ABC5", "203.0.113.5", "e@five.example", "u5@gmail.test", "refused to talk to me: "+fmt.Sprintf(ptr, "s5")) +
		// The same reply to MAIL FROM came before any content: about
		// the relay's address too, not the message whose MAIL was next
		// (rep19); at the end of DATA it is the message's.
		deferred("4A0006ABC6", "203.0.113.6", "f@six.example", "u6@gmail.test", "said: "+fmt.Sprintf(netblock, "s6")+" (in reply to MAIL FROM command)") +
		deferred("4A0007ABC7", "203.0.113.7", "g@seven.example", "u7@gmail.test", "said: "+fmt.Sprintf(netblock, "s7")+" (in reply to end of DATA command)")
	revEnf2Actions(t, c, &out, log,
		"would-alert 4A0005ABC5 203.0.113.5 ",
		"would-ban 4A0007ABC7 203.0.113.7 ",
	)
}

// TestRevEnf2RelayEnforcerReplyFilter: relay-enforcer's manual has Postfix
// deliver to Gmail through smtp_reply_filter =
// pcre:/etc/postfix/smtp_dsn_rw_filter.pcre, which rewrites Gmail's last
// line "421 4.7.0 ... - gsmtp" into "554 5.7.0 ... - gsmtp-fmod_generic",
// and Postfix logs the reply as filtered. The reply no longer ended in
// "gsmtp", so postfix-enforcer took it for another server's and did
// nothing: Gmail's unusual rate of unsolicited mail banned nobody. The
// marker relay-enforcer's filter appends is Gmail's reply still.
func TestRevEnf2RelayEnforcerReplyFilter(t *testing.T) {
	var out strings.Builder
	c := revEnf2Companion(t, &out)
	const ipRate = "421-4.7.0 [192.0.2.10 15] Our system has detected an unusual rate of 421-4.7.0 unsolicited mail originating from your IP address. To protect our 421-4.7.0 users from spam, mail sent from your IP address has been temporarily 421-4.7.0 rate limited. Please visit 554 5.7.0 https://support.google.com/mail/?p=UnsolicitedRateLimitError to review our Bulk Email Senders Guidelines. %s - gsmtp-fmod_generic"
	const domainRep = "421-4.7.0 [192.0.2.10 15] Our system has detected that this message is suspicious due to the very low 554 5.7.0 reputation of the sending domain. %s - gsmtp-fmod_bulk"
	log := message("4A0001ABC1", "203.0.113.1", "a@one.example", "u1@gmail.test", "m-1@x", fmt.Sprintf(ipRate, "s1")) +
		message("4A0002ABC2", "203.0.113.2", "b@two.example", "u2@gmail.test", "m-2@x", fmt.Sprintf(domainRep, "s2")) +
		// Gmail's reply on one line, so the filter rewrote the whole of it.
		strings.Replace(message("4A0004ABC4", "203.0.113.4", "d@four.example", "u4@gmail.test", "m-4@x", "554-5.7.0 ONE LINE"), "554-5.7.0 ONE LINE",
			"554 5.7.0 [192.0.2.10 15] Our system has detected that this message is suspicious due to the very low reputation of the sending IP address. s4 - gsmtp-fmod_generic", 1) +
		// Not relay-enforcer's marker: another server's reply.
		message("4A0003ABC3", "203.0.113.3", "c@three.example", "u3@gmail.test", "m-3@x", fmt.Sprintf(ipRate, "s3")+" via backup")
	revEnf2Actions(t, c, &out, log,
		"would-ban 4A0001ABC1 203.0.113.1 ",
		"would-block-domain 4A0002ABC2 203.0.113.2two.example ",
		"would-ban 4A0004ABC4 203.0.113.4 ",
	)
}

// revEnf2Companion is a companion in test mode with the built-in rules and
// no welcomelist, writing its action lines to out.
func revEnf2Companion(t *testing.T, out *strings.Builder) *Companion {
	return New(Options{Test: true, SenderAccess: filepath.Join(t.TempDir(), "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
		enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{Reinjection: postfixlog.ReinjectNever},
		nil, maillog.New(out), nil)
}

// TestRevEnf2PendingBanSurvivesRestart: postfix-enforcer writes a ban's
// line --ban-delay (10 s) after it acts, and records the action at once in
// its state. Killed within the delay (kill -9, a crash, a reboot), it lost
// the ban for good: the line was never written, and the refusal, read
// already and recorded as acted on, was not acted on again. The bans
// waiting are in the state, and a restart queues them again.
func TestRevEnf2PendingBanSurvivesRestart(t *testing.T) {
	var lines1, lines2 revEnf2Sink
	w1 := enforce.NewBanWriter(&lines1, nil, nil, nil)
	var out strings.Builder
	c1 := New(Options{BanDelay: time.Hour, SenderAccess: filepath.Join(t.TempDir(), "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
		enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{Reinjection: postfixlog.ReinjectNever},
		w1, maillog.New(&out), nil)
	for _, l := range strings.Split(message("4A0001ABC1", "203.0.113.9", "a@spam.example", "u1@gmail.test", "s-1@x", fmt.Sprintf(unsolicited, "s1")), "\n") {
		c1.Line(l)
	}
	if w1.Pending() != 1 {
		t.Fatalf("bans waiting = %d; want 1", w1.Pending())
	}
	st, err := c1.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	// Killed: w1's waiting ban is lost with the process.
	w2 := enforce.NewBanWriter(&lines2, nil, nil, nil)
	c2 := New(Options{BanDelay: time.Hour, SenderAccess: filepath.Join(t.TempDir(), "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
		enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{Reinjection: postfixlog.ReinjectNever},
		w2, maillog.New(&out), nil)
	if err := c2.Restore(st); err != nil {
		t.Fatal(err)
	}
	if w2.Pending() != 1 {
		t.Fatalf("after the restart, bans waiting = %d; want the one not written yet (state %s)", w2.Pending(), st)
	}
	w2.Flush()
	if len(lines2) != 1 || !strings.HasSuffix(lines2[0], " 203.0.113.9") || !strings.Contains(lines2[0], "gmail-unsolicited queue 4A0001ABC1") {
		t.Errorf("ban lines after the restart: %q", lines2)
	}
}

// revEnf2Sink keeps the ban lines written.
type revEnf2Sink []string

func (s *revEnf2Sink) WriteBan(line string) error { *s = append(*s, line); return nil }

// TestRevEnf2OwnCopiesNeverBanned: postfix-enforcer submits its
// encapsulated copies and its reports to Postfix over loopback (--smtp)
// from --sender. Gmail refusing one as spam banned 127.0.0.1 when the
// welcomelist given does not list loopback (docs: "one you give is used as
// given"), though docs/postfix-enforcer.md says a refused copy is
// reported: it is the companion's own message, as a relay's notice is the
// relay's. The same sender from another client is a forgery, and banned.
func TestRevEnf2OwnCopiesNeverBanned(t *testing.T) {
	var out strings.Builder
	c := revEnf2Companion(t, &out)
	log := strings.Replace(message("4A0001ABC1", "127.0.0.1", "postmaster@relay.test", "u1@gmail.test", "c-1@relay.test", fmt.Sprintf(unsolicited, "s1")),
		"client=host.example[127.0.0.1]", "client=localhost[127.0.0.1]", 1) +
		message("4A0002ABC2", "203.0.113.2", "Postmaster@relay.test", "u2@gmail.test", "f-1@x", fmt.Sprintf(unsolicited, "s2"))
	revEnf2Actions(t, c, &out, log,
		"would-report 4A0001ABC1 127.0.0.1 the relay's own message (a notice): never acted on",
		"would-ban 4A0002ABC2 203.0.113.2 ",
	)
}

// revEnf2Actions runs c over log and checks its action lines (see runLog).
func revEnf2Actions(t *testing.T, c *Companion, out *strings.Builder, log string, want ...string) {
	t.Helper()
	if got := runLog(t, c, out, log); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("actions:\n%s\nwant:\n%s\nlog:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out.String())
	}
}
