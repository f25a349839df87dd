package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// gmailRate is Gmail's rate-limit reply (shared/gmail-replies.md, pace),
// as it sends it, before closing the connection.
const gmailRate = "421-4.7.28 Gmail has detected an unusual rate of email originating from your IP address\r\n" +
	"421-4.7.28 127.0.0.1. To protect our users from spam, mail sent from your IP address has\r\n" +
	"421 4.7.28 been temporarily rate limited. https://support.google.com/mail/?p=UnsolicitedRateLimitError - gsmtp"

// rateOnce is a fake Gmail that answers the first RCPT with its rate
// reply and closes, and takes everything after.
func rateOnce(t *testing.T) *harness.FakeSMTP {
	var said atomic.Bool
	return harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, arg string) harness.Response {
		if st == harness.StageRcpt && said.CompareAndSwap(false, true) {
			return harness.Response{Fault: harness.Close421, Reply: gmailRate}
		}
		return harness.Response{}
	}})
}

type paceListing struct {
	Paces []struct {
		Destination string        `json:"destination"`
		Until       time.Time     `json:"until"`
		Delay       time.Duration `json:"delay"`
		Concurrency int           `json:"concurrency"`
	} `json:"paces"`
}

// TestPaceAfterGmailRateReply counts sessions to a fake Gmail after its
// 421 4.7.28 rate reply: none while the destination is suspended
// (pace_suspend, 3s here so that the test is quick), though five more
// messages are queued and the relay is kicked for each; then one session at
// a time, deliveries at least pace_delay apart at first. Nothing is bounced
// or refused; queue list and the mail log show the pace.
func TestPaceAfterGmailRateReply(t *testing.T) {
	t.Parallel()
	fake := rateOnce(t)
	r := opsRelay(t, fake.Addr(), "[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"2s\"\n"+
		"pace_suspend = \"3s\"\npace_delay = \"1s\"\n", "--forward-on-disconnect")
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@gmail.test"}, message("pace 0"))
	pace := r.waitEvent("pace", 10*time.Second, nil)
	start := time.Now()
	if pace.Get("destination") != fake.Addr() || pace.Get("verdict") != "pace" {
		t.Fatalf("pace line %v; want destination=%s verdict=pace", pace.Fields, fake.Addr())
	}
	conns := fake.Connections()
	for i := 1; i <= 5; i++ {
		mustSend(t, r.addr(), "alice@example.org", []string{"bob@gmail.test"}, message(fmt.Sprintf("pace %d", i)))
	}
	out, _, _ := opsCmd(t, "", "queue", "list", "--spool-dir", r.spool)
	if !strings.Contains(out, "Paced destinations:") || !strings.Contains(out, fake.Addr()+"  one session at a time") {
		t.Errorf("queue list while paced:\n%s\nwant the paced destination", out)
	}
	time.Sleep(time.Until(start.Add(2500 * time.Millisecond)))
	if n := fake.Connections(); n != conns {
		t.Errorf("sessions within the suspension: %d new; want none", n-conns)
	}

	var sent []*maillog.Entry
	waitFor(60*time.Second, func() bool {
		sent = nil
		for _, e := range r.events("delivery") {
			if e.Get("result") == "sent" {
				sent = append(sent, e)
			}
		}
		return len(sent) == 6
	})
	if len(sent) != 6 {
		t.Fatalf("%d of 6 messages delivered", len(sent))
	}
	if first := sent[0].Time.Sub(pace.Time); first < 2900*time.Millisecond {
		t.Errorf("first delivery %v after the rate reply; want the 3s suspension kept", first)
	}
	// The pace spaces session starts; these are the times the replies came
	// back, and the delay shrinks by a quarter per delivery, so the design
	// promises at least 0.75 × pace_delay between them, less a little for
	// a first session slower than the second (it failed once at 889ms under
	// load with a 900ms bound). Unpaced, the gap is a few milliseconds.
	if gap := sent[1].Time.Sub(sent[0].Time); gap < 650*time.Millisecond {
		t.Errorf("second delivery %v after the first; want about pace_delay, 1s", gap)
	}
	if m := fake.MaxConcurrent(); m != 1 {
		t.Errorf("at most %d sessions at once; want 1 while paced", m)
	}
	for _, e := range r.events("delivery") {
		if e.Get("result") == "bounced" {
			t.Errorf("bounced: %v", e.Fields)
		}
	}
	for _, e := range r.events("ban") {
		t.Errorf("a rate reply sanctioned someone: %v", e.Fields)
	}
}

// TestPaceDefaultSuspension: with no configuration, a rate reply stops new
// sessions for a minute, as queue list --json shows.
func TestPaceDefaultSuspension(t *testing.T) {
	t.Parallel()
	fake := rateOnce(t)
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect")
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@gmail.test"}, message("pace default"))
	pace := r.waitEvent("pace", 10*time.Second, nil)
	out, _, _ := opsCmd(t, "", "queue", "list", "--json", "--spool-dir", r.spool)
	var l paceListing
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.Paces) != 1 {
		t.Fatalf("queue list --json paces: %v %q", err, out)
	}
	p := l.Paces[0]
	if d := p.Until.Sub(pace.Time); d < 59*time.Second || d > 61*time.Second || p.Concurrency != 1 || p.Delay != 5*time.Second {
		t.Errorf("pace %+v (until +%v); want no session for 60s, then one at a time 5s apart", p, d)
	}
}

// TestQuotaKeepsMail: the smarthost says the account's daily sending
// limit is used up. Nothing is bounced, no notice goes to the sender, and
// every message waits for the quota window (24h by default), as queue list
// shows.
func TestQuotaKeepsMail(t *testing.T) {
	t.Parallel()
	const quota = "550-5.4.5 Daily user sending limit exceeded. For more information on Gmail\r\n" +
		"550-5.4.5 sending limits go to\r\n550 5.4.5  https://support.google.com/a/answer/166852 - gsmtp"
	fake := harness.NewFakeSMTP(t, harness.Script{Mail: harness.Response{Reply: quota}})
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect")
	for i := range 2 {
		mustSend(t, r.addr(), "alice@example.org", []string{"bob@gmail.test"}, message(fmt.Sprintf("quota %d", i)))
	}
	pace := r.waitEvent("pace", 10*time.Second, nil)
	if pace.Get("verdict") != "quota" {
		t.Fatalf("pace line %v; want verdict=quota", pace.Fields)
	}
	var l opsListing
	waitFor(10*time.Second, func() bool {
		l = opsList(t, r.spool)
		n := 0
		for _, m := range l.Messages {
			if m.State == "ready" && m.NextAttempt.After(time.Now().Add(23*time.Hour)) {
				n++
			}
		}
		return n == 2
	})
	for _, m := range l.Messages {
		if m.State != "ready" || m.NextAttempt.Before(time.Now().Add(23*time.Hour)) {
			t.Errorf("message %s %s next attempt %v; want ready, due after the 24h window", m.ID, m.State, m.NextAttempt)
		}
	}
	if len(l.Messages) != 2 {
		t.Errorf("%d messages queued; want both", len(l.Messages))
	}
	for _, e := range r.events("delivery") {
		if e.Get("result") == "bounced" {
			t.Errorf("bounced: %v", e.Fields)
		}
	}
	if n := len(opsNotices(r, "")); n != 0 {
		t.Errorf("%d notices sent; want none", n)
	}
}

// TestDoubleBounceToPostmaster: a message fails, and its failure notice is
// refused by the upstream too: the notice goes to the postmaster as a double
// bounce, from double-bounce@ (TestDoubleBounce in internal/deliver shows
// that a refused double bounce is dropped).
func TestDoubleBounceToPostmaster(t *testing.T) {
	t.Parallel()
	refuse := harness.Response{Reply: "550 5.1.1 no such user"}
	fake := harness.NewFakeSMTP(t, harness.Script{RcptFor: map[string]harness.Response{
		"bob@example.net": refuse, "alice@example.org": refuse}})
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect")
	tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("double bounce"))
	id := queuedID(t, tx.Final)
	var got *harness.Transaction
	waitFor(20*time.Second, func() bool {
		for _, x := range fake.Transactions() {
			if x.Accepted() && len(x.To()) == 1 && x.To()[0] == "postmaster@relay.test" {
				got = &x
				return true
			}
		}
		return false
	})
	if got == nil {
		t.Fatalf("no double bounce reached the upstream; transactions %v", fake.Transactions())
	}
	if got.MailFrom != "double-bounce@relay.test" || !strings.Contains(string(got.Data), "alice@example.org") {
		t.Errorf("double bounce from <%s>; want double-bounce@relay.test, returning the notice to alice", got.MailFrom)
	}
	if e := r.events("notice"); len(e) != 2 || e[1].Get("kind") != "2bounce" {
		t.Errorf("notice lines %v; want the failure notice about %s, then the double bounce", e, id)
	}
	// Only the original stays, failed; neither notice is kept. Waited for
	// whole: the original's envelope may still be on its way to .bad (a
	// temporary file beside .busy) when the notices are gone.
	waitFor(10*time.Second, func() bool {
		files := spoolFiles(t, r.spool)
		return len(files) == 1 && strings.Join(files[id], ",") == "content,envelope.bad"
	})
	if files := spoolFiles(t, r.spool); len(files) != 1 || strings.Join(files[id], ",") != "content,envelope.bad" {
		t.Errorf("spool holds %v; want only %s, failed", files, id)
	}
}

// TestAuthFailureDefers: the smarthost refuses the relay's login. The
// message stays queued (deferred, a 4xx naming the login), the mail log
// has an alert line, and nothing is bounced.
func TestAuthFailureDefers(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	up, pem := authUpstream(t, sink)
	sec := writeFile(t, t.TempDir(), "client.secrets", "client plain alice@rk.test wrong-password\n", 0o600)
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.addr(), "--forward-on-disconnect",
		"--client-tls", "--client-auth", sec, "--client-tls-verify", pem,
		"--interface", "127.0.0.1", "--domain", "relay.test", "--spool-dir", t.TempDir())
	tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("wrong password"))
	id := queuedID(t, tx.Final)
	alert := r.waitEvent("alert", 10*time.Second, nil)
	if !strings.Contains(alert.Get("reply"), "535") {
		t.Errorf("alert line %v; want the upstream's 535", alert.Fields)
	}
	d := r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == id })
	if d.Get("result") != "deferred" || !strings.HasPrefix(d.Get("reply"), "454 4.7.0 upstream auth failed") {
		t.Errorf("delivery line %v; want deferred with 454 4.7.0 upstream auth failed", d.Fields)
	}
	if n := len(opsNotices(r, "")); n != 0 {
		t.Errorf("%d notices; want none", n)
	}
}
