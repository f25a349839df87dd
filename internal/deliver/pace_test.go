package deliver

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relaykeeper/relaykeeper/internal/bounce"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// addMessage spools one more message.
func addMessage(t *testing.T, sp *spool.Spool, env *spool.Envelope) string {
	t.Helper()
	w, err := sp.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: t\r\n\r\nbody\r\n")
	if env.Arrival.IsZero() {
		env.Arrival = t0
	}
	if err := w.Prepare(env); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	return w.ID()
}

func rcpts(addrs ...string) []spool.Recipient {
	var out []spool.Recipient
	for _, a := range addrs {
		out = append(out, spool.Recipient{Addr: a, Status: spool.Pending})
	}
	return out
}

// run starts s.Run and stops it when the test ends.
func run(t *testing.T, s *Scheduler) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

var rateReply = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 28},
	Message: "Gmail has detected an unusual rate of email originating from your IP address 127.0.0.1. To protect our users from spam, mail sent from your IP address has been temporarily rate limited."}

// TestPaceAfterRateReply: after one 421 4.7.28 rate reply, no new session
// goes to the destination for a minute, though more mail is queued; then it
// resumes one session at a time with a delay between deliveries, which
// decays with each delivery. Nothing is bounced.
func TestPaceAfterRateReply(t *testing.T) {
	up := startUpstream(t)
	up.set("r@example.net", rateReply)
	sp, s, clk, id := setup(t, up.addr, "r@example.net")
	s.opts.MinBackoff = DefaultMinBackoff
	ns := &notices{}
	s.opts.Notices = ns
	run(t, s)
	waitFor(t, func() bool { env, st, _ := sp.Read(id); return env != nil && env.Attempts == 1 && st == spool.Ready })
	ps := s.Paces()
	if len(ps) != 1 || ps[0].Destination != up.addr || !ps[0].Until.Equal(t0.Add(time.Minute)) || ps[0].Concurrency != 1 {
		t.Fatalf("paces = %+v; want %s paced until %v, one session", ps, up.addr, t0.Add(time.Minute))
	}
	if saved, err := ReadPaces(sp.Dir()); err != nil || len(saved) != 1 {
		t.Errorf("ReadPaces = %+v, %v; want the one pace", saved, err)
	}

	// More mail comes; the relay kicks; nothing goes for a minute.
	sessions := up.sessionCount()
	id2 := addMessage(t, sp, &spool.Envelope{From: "a@example.com", Recipients: rcpts("ok@example.net")})
	s.Kick(true)
	clk.Advance(30 * time.Second)
	time.Sleep(200 * time.Millisecond)
	if n := up.sessionCount(); n != sessions {
		t.Errorf("sessions within the pause = %d; want still %d", n, sessions)
	}
	env2, st2, err := sp.Read(id2)
	if err != nil || st2 != spool.Ready || env2.Attempts != 0 || !env2.NextAttempt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("second message %v attempts %d next %v (%v); want ready, untried, due when the pause ends", st2, env2.Attempts, env2.NextAttempt, err)
	}

	up.set("r@example.net", nil)
	for i := 0; i < 200 && (len(up.got()) < 2); i++ {
		clk.Advance(time.Second)
		time.Sleep(20 * time.Millisecond)
	}
	if got := up.got(); len(got) != 2 {
		t.Fatalf("after the pause the upstream got %v; want both messages", got)
	}
	ps = s.Paces()
	if len(ps) != 1 || ps[0].Delay >= 5*time.Second {
		t.Errorf("paces after two deliveries = %+v; want the delay decayed below 5s", ps)
	}
	if len(ns.got) != 0 {
		t.Errorf("notices = %+v; want none: nothing bounced", ns.got)
	}
}

// TestPaceRecipient: a 4.2.1 reply suspends that recipient alone; another
// recipient at the same destination goes on.
func TestPaceRecipient(t *testing.T) {
	up := startUpstream(t)
	up.set("busy@example.net", &smtp.SMTPError{Code: 450, EnhancedCode: smtp.EnhancedCode{4, 2, 1},
		Message: "The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered."})
	sp, s, clk, _ := setup(t, up.addr, "busy@example.net")
	s.opts.MinBackoff = DefaultMinBackoff
	run(t, s)
	waitFor(t, func() bool { return len(s.Paces()) == 1 })
	if p := s.Paces()[0]; p.Destination != "rcpt:busy@example.net" {
		t.Fatalf("pace = %+v; want the recipient alone", p)
	}
	id2 := addMessage(t, sp, &spool.Envelope{From: "a@example.com", Recipients: rcpts("busy@example.net", "other@example.net")})
	s.Kick(true)
	waitFor(t, func() bool {
		env, st, _ := sp.Read(id2)
		return st == spool.Ready && env.Count(spool.Sent) == 1
	})
	env, _, _ := sp.Read(id2)
	for _, r := range env.Recipients {
		if want := map[string]spool.RcptStatus{"busy@example.net": spool.Pending, "other@example.net": spool.Sent}[r.Addr]; r.Status != want {
			t.Errorf("%s: %s; want %s", r.Addr, r.Status, want)
		}
	}
	up.set("busy@example.net", nil)
	clk.Advance(61 * time.Second)
	waitFor(t, func() bool { return len(up.got()) == 3 })
}

// TestQuotaWindow: 550 5.4.5 from the smarthost bounces nothing; the mail
// waits for the quota window and goes when it has passed.
func TestQuotaWindow(t *testing.T) {
	up := startUpstream(t)
	up.set("q@example.net", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 4, 5},
		Message: "Daily user sending limit exceeded. For more information on Gmail sending limits go to https://support.google.com/a/answer/166852"})
	sp, s, clk, id := setup(t, up.addr, "q@example.net")
	ns := &notices{}
	s.opts.Notices = ns
	s.opts.Pace.QuotaWindow = 24 * time.Hour
	run(t, s)
	waitFor(t, func() bool { env, st, _ := sp.Read(id); return env != nil && env.Attempts == 1 && st == spool.Ready })
	env, st, _ := sp.Read(id)
	if st != spool.Ready || env.Recipients[0].Status != spool.Deferred || !env.NextAttempt.Equal(t0.Add(24*time.Hour)) {
		t.Fatalf("after 5.4.5: %v %+v next %v; want ready, deferred, due in 24h", st, env.Recipients, env.NextAttempt)
	}
	up.set("q@example.net", nil)
	clk.Advance(23 * time.Hour)
	s.Kick(true)
	time.Sleep(200 * time.Millisecond)
	if got := up.got(); len(got) != 0 {
		t.Fatalf("delivered within the quota window: %v", got)
	}
	clk.Advance(time.Hour)
	waitFor(t, func() bool { _, _, err := sp.Read(id); return err != nil })
	if got := up.got(); len(got) != 1 {
		t.Errorf("after the window the upstream got %v; want the message", got)
	}
	if len(ns.got) != 0 {
		t.Errorf("notices = %+v; want none", ns.got)
	}
	if ps := s.Paces(); len(ps) != 0 {
		t.Errorf("paces after the window = %+v; want none", ps)
	}
}

// TestDoubleBounce: a notice the upstream refuses goes to the postmaster as
// a double bounce; a double bounce refused in turn is dropped, so no loop.
func TestDoubleBounce(t *testing.T) {
	up := startUpstream(t)
	refuse := &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"}
	up.set("gone@example.net", refuse)
	sp, s, _, id := setup(t, up.addr, "x@example.net")
	if c, err := sp.Claim(id); err != nil || c.Delete() != nil {
		t.Fatalf("removing the setup message: %v", err)
	}
	s.opts.Notices = &bounce.Notifier{Spool: sp, ReportingMTA: "relay.test", Now: func() time.Time { return t0 }}
	notice := addMessage(t, sp, &spool.Envelope{From: "", Bounce: true, Recipients: rcpts("gone@example.net"), Client: "local"})
	// A run sends the notices it queued, the double bounce too: the
	// postmaster's address defers it, so that it stays to be looked at.
	up.set("postmaster@relay.test", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"})
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, _, err := sp.Read(notice); err == nil {
		t.Errorf("the refused notice is still queued")
	}
	ents, _ := sp.List()
	if len(ents) != 1 {
		t.Fatalf("spool holds %d messages; want the double bounce", len(ents))
	}
	env, _, _ := sp.Read(ents[0].ID)
	if env.From != "double-bounce@relay.test" || env.Recipients[0].Addr != "postmaster@relay.test" || !env.Bounce {
		t.Fatalf("double bounce from %q to %+v; want double-bounce@ to postmaster@", env.From, env.Recipients)
	}
	// The postmaster's address is refused too: dropped, nothing new.
	up.set("postmaster@relay.test", refuse)
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ents, _ := sp.List(); len(ents) != 0 {
		t.Errorf("spool holds %d messages; want none (a refused double bounce is dropped)", len(ents))
	}
}

// TestDoubleBounceServedFullDisk: a refused double bounce served from the
// journal is dropped even when its content cannot be written out (a full
// disk; a hidden directory in the way stands in for it): dropping it needs
// no file, so the notifier must not ask for one. Asking made it fail, go
// back to the queue untouched and be refused again at every run.
func TestDoubleBounceServedFullDisk(t *testing.T) {
	up := startUpstream(t)
	up.set("postmaster@relay.test", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	sp, s, _, id := setup(t, up.addr, "x@example.net")
	if c, err := sp.Claim(id); err != nil || c.Delete() != nil {
		t.Fatalf("removing the setup message: %v", err)
	}
	if _, err := sp.OpenJournal(); err != nil {
		t.Fatal(err)
	}
	s.opts.Notices = &bounce.Notifier{Spool: sp, ReportingMTA: "relay.test", Now: func() time.Time { return t0 }}
	// As while the daemon's scheduler runs: a watcher makes the spool
	// serve small messages from memory.
	sp.Watch(nopWatcher{})
	double := addMessage(t, sp, &spool.Envelope{From: "double-bounce@relay.test", Bounce: true,
		Recipients: rcpts("postmaster@relay.test"), Client: "local"})
	sp.Watch(nil)
	if _, err := os.Stat(sp.ContentPath(double)); !os.IsNotExist(err) {
		t.Fatalf("the double bounce has its content file (%v); want it served from memory", err)
	}
	if err := os.Mkdir(filepath.Join(sp.Dir(), "."+double+".content"), 0o750); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if env, st, err := sp.Read(double); err == nil {
		t.Errorf("the refused double bounce is still queued: %v, attempts %d; want it dropped", st, env.Attempts)
	}
}

type nopWatcher struct{}

func (nopWatcher) Committed(string, []byte) {}

// TestFlushRunningScheduler: Flush has the running scheduler try a
// deferred message at once, and reports what became of it.
func TestFlushRunningScheduler(t *testing.T) {
	up := startUpstream(t)
	up.set("f@example.net", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"})
	sp, s, _, id := setup(t, up.addr, "f@example.net")
	run(t, s)
	waitFor(t, func() bool { env, st, _ := sp.Read(id); return env != nil && env.Attempts == 1 && st == spool.Ready })
	up.set("f@example.net", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sum, err := s.Flush(ctx)
	if err != nil || sum.Messages != 1 || sum.Sent != 1 {
		t.Errorf("Flush = %+v, %v; want one message sent", sum, err)
	}
	if _, _, err := sp.Read(id); err == nil {
		t.Errorf("message still queued after the flush")
	}
}

// TestPaceAtGreeting: Gmail's "421 4.7.0 Try again later, closing
// connection" as its greeting paces the destination too.
func TestPaceAtGreeting(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, "421 4.7.0 Try again later, closing connection. (EHLO) x - gsmtp\r\n")
			c.Close()
		}
	}()
	sp, s, _, id := setup(t, l.Addr().String(), "g@example.net")
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if ps := s.Paces(); len(ps) != 1 || ps[0].Destination != l.Addr().String() {
		t.Errorf("paces = %+v; want the destination paced", ps)
	}
	if env, st, _ := sp.Read(id); st != spool.Ready || env.Recipients[0].Status != spool.Deferred {
		t.Errorf("message %v %+v; want ready, deferred", st, env.Recipients)
	}
}

// TestStockVerdicts: Gmail's pace and alert texts, both wordings.
func TestStockVerdicts(t *testing.T) {
	for _, c := range []struct {
		code  int
		text  string
		stage string
		want  Verdict
	}{
		{421, "4.7.28 Gmail has detected an unusual rate of email originating from your IP address 192.0.2.1.", "rcpt", VerdictPace},
		{421, "4.7.28 Gmail has detected an unusual rate of mail originating from your IP address 192.0.2.1.", "rcpt", VerdictPace},
		{421, "4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your IP Netblock", "rcpt", VerdictNone},
		{421, "4.7.0 Try again later, closing connection.", "mail", VerdictPace},
		{421, "4.7.28 Gmail has detected an unusual rate of email originating\n4.7.28 from your IP address 192.0.2.1.", "rcpt", VerdictPace},
		{450, "4.2.1 The user you are trying to contact is receiving mail too quickly.", "rcpt", VerdictPaceRecipient},
		{550, "5.4.5 Daily user sending limit exceeded. For more information", "mail", VerdictQuota},
		{550, "5.4.5 Daily SMTP relay limit exceeded for user", "mail", VerdictQuota},
		{535, "5.7.8 Username and Password not accepted.", "auth", VerdictAlert},
		{550, "5.7.29 This message was blocked because it wasn't sent over a TLS connection.", "data", VerdictAlert},
		{550, "5.1.1 The email account that you tried to reach does not exist.", "rcpt", VerdictNone},
		{451, "4.3.0 Mail server temporarily rejected message.", "data", VerdictNone},
	} {
		r := Result{Reply: reply.Reply{Code: c.code, Lines: []string{c.text}}, Stage: c.stage}
		if strings.Contains(c.text, "\n") {
			r.Reply.Enhanced, _, _ = strings.Cut(c.text, " ")
			r.Reply.Lines = strings.Split(c.text, "\n")
		}
		if got := (StockVerdicts{}).Verdict(r); got != c.want {
			t.Errorf("Verdict(%d %s) = %v; want %v", c.code, c.text, got, c.want)
		}
	}
}

// sessionCount is how many sessions the upstream has seen.
func (u *upstream) sessionCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.sessions
}
