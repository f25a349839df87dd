package deliver

import (
	"context"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relaykeeper/relaykeeper/internal/bounce"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/route"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// fakeClock is a Clock that moves only when told to.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	keep := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			keep = append(keep, w)
		}
	}
	c.waiters = keep
}

// upstream is an in-process SMTP server whose RCPT replies a test sets per
// address, counting the messages it accepts.
type upstream struct {
	mu       sync.Mutex
	txs      int                        // transactions accepted
	sessions int                        // sessions opened
	rcpt     map[string]*smtp.SMTPError // nil entry: accept
	received []string                   // recipients of accepted messages
	addr     string
	// hold, if set, makes DATA wait until it is closed; inData hears of
	// each DATA that waits.
	hold   chan struct{}
	inData chan struct{}
	reads  []string // what each of the server's reads got, in order
	// mailErr refuses the nth MAIL (from 1) the upstream sees.
	mailErr map[int]*smtp.SMTPError
	mails   int
}

// recordingListener's connections note each read in their upstream's reads.
type recordingListener struct {
	net.Listener
	u *upstream
}

func (l recordingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	return recordingConn{c, l.u}, err
}

type recordingConn struct {
	net.Conn
	u *upstream
}

func (c recordingConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.u.mu.Lock()
	c.u.reads = append(c.u.reads, string(b[:n]))
	c.u.mu.Unlock()
	return n, err
}

func startUpstream(t *testing.T) *upstream {
	u := &upstream{rcpt: map[string]*smtp.SMTPError{}}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		u.mu.Lock()
		u.sessions++
		u.mu.Unlock()
		return &upSession{u: u}, nil
	}))
	s.Domain = "upstream.test"
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.addr = l.Addr().String()
	go s.Serve(recordingListener{l, u})
	t.Cleanup(func() { s.Close() })
	return u
}

func (u *upstream) set(addr string, e *smtp.SMTPError) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.rcpt[addr] = e
}

func (u *upstream) got() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.received...)
}

type upSession struct {
	u     *upstream
	rcpts []string
}

func (s *upSession) Reset()        { s.rcpts = nil }
func (s *upSession) Logout() error { return nil }
func (s *upSession) Mail(string, *smtp.MailOptions) error {
	s.u.mu.Lock()
	defer s.u.mu.Unlock()
	s.u.mails++
	if e := s.u.mailErr[s.u.mails]; e != nil {
		return e
	}
	return nil
}
func (s *upSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		// The session ended without the final dot: nothing to deliver.
		return err
	}
	if s.u.hold != nil {
		s.u.inData <- struct{}{}
		<-s.u.hold
	}
	s.u.mu.Lock()
	s.u.received = append(s.u.received, s.rcpts...)
	s.u.txs++
	s.u.mu.Unlock()
	return nil
}
func (s *upSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.u.mu.Lock()
	e := s.u.rcpt[to]
	s.u.mu.Unlock()
	if e != nil {
		return e
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func setup(t *testing.T, upAddr string, rcpts ...string) (*spool.Spool, *Scheduler, *fakeClock, string) {
	t.Helper()
	sp, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := queueRcpts(t, sp, rcpts...)
	clk := &fakeClock{now: t0}
	s := New(Options{Spool: sp, Upstream: upAddr, Clock: clk, Connections: 2,
		MinBackoff: 300 * time.Second, MaxBackoff: 4000 * time.Second,
		Dial: &remote.Dialer{Options: remote.Options{Helo: "relay.test", ConnectTimeout: 2 * time.Second, ResponseTimeout: 5 * time.Second}}})
	return sp, s, clk, id
}

func TestRunOnceOutcomes(t *testing.T) {
	up := startUpstream(t)
	up.set("bad@example.net", &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 1, 1}, Message: "no such user"})
	up.set("later@example.net", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "try later"})
	sp, s, _, id := setup(t, up.addr, "ok@example.net", "bad@example.net", "later@example.net")

	sum, err := s.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Messages != 1 || sum.Deferred != 1 {
		t.Errorf("summary = %+v; want 1 message, deferred", sum)
	}
	env, st, err := sp.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	if st != spool.Ready {
		t.Errorf("state = %v; want ready (one recipient deferred)", st)
	}
	want := map[string]spool.RcptStatus{"ok@example.net": spool.Sent, "bad@example.net": spool.Bounced, "later@example.net": spool.Deferred}
	for _, r := range env.Recipients {
		if r.Status != want[r.Addr] {
			t.Errorf("%s: status %s; want %s (reply %q)", r.Addr, r.Status, want[r.Addr], r.Reply)
		}
	}
	if got := env.NextAttempt.Sub(t0); got < 270*time.Second || got > 300*time.Second {
		t.Errorf("next attempt in %v; want 270s..300s", got)
	}

	// The deferred recipient now succeeds; the sent one is not sent again.
	up.set("later@example.net", nil)
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := up.got(); strings.Join(got, ",") != "ok@example.net,later@example.net" {
		t.Errorf("upstream received %v; want ok then later, once each", got)
	}
	env, st, _ = sp.Read(id)
	if st != spool.Failed || len(env.Reasons) != 2 || !strings.Contains(env.Reasons[0], "550") {
		t.Errorf("state %v reasons %q; want failed with a 550 reason", st, env.Reasons)
	}
}

func TestRunOnceUnreachable(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close() // nobody listens: connection refused
	sp, s, _, id := setup(t, addr, "x@example.net")
	sum, _ := s.RunOnce(context.Background())
	if sum.Deferred != 1 || sum.Sent != 0 {
		t.Errorf("summary = %+v; want deferred", sum)
	}
	env, st, _ := sp.Read(id)
	// The relay's own account, without a code: no server said it.
	if st != spool.Ready || !strings.HasPrefix(env.LastReply, "4.4.1 upstream connect failed: ") {
		t.Errorf("state %v last reply %q; want ready with 4.4.1 upstream connect failed", st, env.LastReply)
	}
}

func TestBackoffSchedule(t *testing.T) {
	s := New(Options{MinBackoff: 300 * time.Second, MaxBackoff: 4000 * time.Second})
	for n, want := range map[int]time.Duration{1: 300 * time.Second, 2: 600 * time.Second, 3: 1200 * time.Second,
		4: 2400 * time.Second, 5: 4000 * time.Second, 9: 4000 * time.Second} {
		got := s.backoff(n)
		if got > want || got < want-want/10 {
			t.Errorf("backoff(%d) = %v; want %v less at most 10%%", n, got, want)
		}
	}
}

// TestRunRetriesOnClock runs the daemon's loop: a deferred message is not
// retried before its back-off has passed on the clock, and is after.
func TestRunRetriesOnClock(t *testing.T) {
	up := startUpstream(t)
	up.set("r@example.net", &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "not now"})
	sp, s, clk, id := setup(t, up.addr, "r@example.net")
	run(t, s)

	waitFor(t, func() bool { env, _, _ := sp.Read(id); return env != nil && env.Attempts == 1 })
	up.set("r@example.net", nil)
	clk.Advance(200 * time.Second) // before the earliest retry (270s)
	time.Sleep(100 * time.Millisecond)
	if env, _, _ := sp.Read(id); env == nil || env.Attempts != 1 {
		t.Fatalf("retried before the back-off: %+v", env)
	}
	clk.Advance(101 * time.Second)
	waitFor(t, func() bool { _, _, err := sp.Read(id); return err != nil })
	if got := up.got(); len(got) != 1 {
		t.Errorf("upstream received %v; want one", got)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type notice struct {
	kind  bounce.Kind
	rcpts []string
}

// notices records the notices a scheduler asks for.
type notices struct {
	mu     sync.Mutex
	got    []notice
	double []string // ids of notices double-bounced
}

func (n *notices) Notify(k bounce.Kind, env *spool.Envelope, _ func() (string, error), rcpts []spool.Recipient) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	nt := notice{kind: k}
	for _, r := range rcpts {
		nt.rcpts = append(nt.rcpts, r.Addr)
	}
	n.got = append(n.got, nt)
	return nil
}

func (n *notices) DoubleBounce(env *spool.Envelope, _ func() (string, error), rcpts []spool.Recipient) (bool, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.double = append(n.double, env.ID)
	return true, nil
}

var (
	_ Notifier = (*bounce.Notifier)(nil)
	_ Notifier = (*notices)(nil)
	_ Router   = (*route.Dialer)(nil)
	_ Dialer   = (*remote.Dialer)(nil)
	_ Verdicts = StockVerdicts{}
)

// TestLifetimeAndNotices: a recipient deferred past the queue lifetime
// fails with a notice; one deferred past the delay warning time gets one
// delay notice, once.
func TestLifetimeAndNotices(t *testing.T) {
	up := startUpstream(t)
	up.set("slow@example.net", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"})
	sp, s, clk, id := setup(t, up.addr, "slow@example.net")
	ns := &notices{}
	s.opts.Notices = ns
	mu := &ns.mu
	s.opts.DelayWarning = 4 * time.Hour
	s.opts.MaxLifetime = 24 * time.Hour

	clk.Advance(5 * time.Hour) // past the warning, within the lifetime
	for range 2 {
		if _, err := s.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	if len(ns.got) != 1 || ns.got[0].kind != bounce.Delay {
		t.Fatalf("notices after two deferrals = %+v; want one delay notice", ns.got)
	}
	mu.Unlock()

	clk.Advance(20 * time.Hour) // now 25h after arrival
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	env, st, err := sp.Read(id)
	if err != nil || st != spool.Failed {
		t.Fatalf("state = %v, %v; want failed after the lifetime", st, err)
	}
	if !strings.Contains(env.Recipients[0].Reply, "expired") || !strings.Contains(env.Recipients[0].Reply, "451") {
		t.Errorf("reply %q; want the expiry with the last reply", env.Recipients[0].Reply)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(ns.got) != 2 || ns.got[1].kind != bounce.Failure || ns.got[1].rcpts[0] != "slow@example.net" {
		t.Errorf("notices = %+v; want delay then failure", ns.got)
	}
}

// domainRouter routes by recipient domain to in-process upstreams.
type domainRouter struct {
	up    map[string]*upstream
	dials map[string]int
	mu    sync.Mutex
}

func (d *domainRouter) Route(sender, rcpt string) route.Destination {
	_, dom, _ := strings.Cut(rcpt, "@")
	switch dom {
	case "err.example":
		return route.Destination{Key: "error", Error: reply.New(550, "5.1.2 no such domain here")}
	case "drop.example":
		return route.Destination{Key: "discard", Discard: true}
	}
	return route.Destination{Key: dom, RecipientLimit: 2, ConcurrencyLimit: 1}
}

func (d *domainRouter) Dial(ctx context.Context, rt route.Destination) (*remote.Conn, string, error) {
	d.mu.Lock()
	d.dials[rt.Key]++
	d.mu.Unlock()
	addr := d.up[rt.Key].addr
	c, err := remote.Dial(ctx, addr, remote.Options{Helo: "relay.test", ConnectTimeout: 2 * time.Second, ResponseTimeout: 5 * time.Second})
	return c, rt.Key + "[" + addr + "]", err
}

// TestRouting: one message to four kinds of destination is split per
// destination, transactions hold at most the recipient limit, error: and
// discard: routes settle their recipients without a session.
func TestRouting(t *testing.T) {
	upA, upB := startUpstream(t), startUpstream(t)
	sp, s, _, id := setup(t, "", "1@a.example", "2@a.example", "3@a.example", "x@b.example", "z@err.example", "w@drop.example")
	r := &domainRouter{up: map[string]*upstream{"a.example": upA, "b.example": upB}, dials: map[string]int{}}
	s.opts.Router = r
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(upA.got(), ","); got != "1@a.example,2@a.example,3@a.example" {
		t.Errorf("a.example received %s", got)
	}
	upA.mu.Lock()
	if upA.txs != 2 {
		t.Errorf("a.example transactions = %d; want 2 (recipient limit 2)", upA.txs)
	}
	upA.mu.Unlock()
	if got := strings.Join(upB.got(), ","); got != "x@b.example" {
		t.Errorf("b.example received %s", got)
	}
	env, st, err := sp.Read(id)
	if err != nil || st != spool.Failed {
		t.Fatalf("state = %v, %v; want failed (the error: recipient)", st, err)
	}
	for _, rc := range env.Recipients {
		want := spool.Sent
		if rc.Addr == "z@err.example" {
			want = spool.Bounced
		}
		if rc.Status != want {
			t.Errorf("%s: %s %q; want %s", rc.Addr, rc.Status, rc.Reply, want)
		}
	}
	if r.dials["a.example"] != 1 {
		t.Errorf("dials to a.example = %d; want 1 (two transactions, one session)", r.dials["a.example"])
	}
}

// TestConcurrencyLimitWaits: with a destination at its limit, a worker
// does not wait for it: the message stays ready and is due again soon,
// without counting an attempt.
func TestConcurrencyLimitWaits(t *testing.T) {
	up := startUpstream(t)
	sp, s, clk, id := setup(t, "", "1@a.example")
	s.opts.Router = &domainRouter{up: map[string]*upstream{"a.example": up}, dials: map[string]int{}}
	if !s.tryAcquire("a.example", 1) {
		t.Fatal("tryAcquire on an idle destination failed")
	}
	s.parkLimit = 200 * time.Millisecond
	if sum, _ := s.RunOnce(context.Background()); sum.Untried != 1 {
		t.Errorf("RunOnce with the slot held = %+v; want the message untried", sum)
	}
	env, st, _ := sp.Read(id)
	if st != spool.Ready || env.Attempts != 0 || env.NextAttempt.Sub(clk.Now()) != busyRetry {
		t.Fatalf("state %v attempts %d next %v; want ready, 0 attempts, due in %v", st, env.Attempts, env.NextAttempt.Sub(clk.Now()), busyRetry)
	}
	s.release("a.example")
	s.RunOnce(context.Background())
	if got := up.got(); len(got) != 1 {
		t.Errorf("after the slot was freed the upstream got %v; want the message", got)
	}
}

// TestSlowStart: a destination with initial_destination_concurrency 1
// and a limit of 3 starts with one session and earns more by delivering.
func TestSlowStart(t *testing.T) {
	s := New(Options{})
	rt := route.Destination{Key: "d", ConcurrencyLimit: 3, InitialConcurrency: 1}
	if w := s.window(rt, 3); w != 1 {
		t.Fatalf("first window = %d; want 1", w)
	}
	s.feedback(rt, true)
	s.feedback(rt, true)
	s.feedback(rt, true)
	if w := s.window(rt, 3); w != 3 {
		t.Errorf("window after three deliveries = %d; want the limit, 3", w)
	}
	for range 3 {
		s.feedback(rt, false)
	}
	if w := s.window(rt, 3); w != 1 {
		t.Errorf("window after three failures to connect = %d; want 1", w)
	}
	if w := s.window(route.Destination{Key: "e", ConcurrencyLimit: 5}, 5); w != 5 {
		t.Errorf("window without slow start = %d; want the limit", w)
	}
}

// TestRunStartsWithWhatWasQueued: Run's first listing delivers what was
// queued before the scheduler was made, but a message accepted after that
// and before the listing (a client quick after a start) waits for its
// kick, as with --poll: E-MailRelay forwards at start only with --forward.
// So does the listing after recovery; the client's disconnection (an
// arrival kick) then sends it.
func TestRunStartsWithWhatWasQueued(t *testing.T) {
	up := startUpstream(t)
	sp, s, _, old := setup(t, up.addr, "old@example.net")
	w, _ := sp.Create(t0)
	io.WriteString(w, "Subject: new\r\n\r\nbody\r\n")
	if err := w.Prepare(&spool.Envelope{From: "a@example.com", Arrival: t0, Client: "127.0.0.1:1",
		Recipients: []spool.Recipient{{Addr: "new@example.net", Status: spool.Pending}}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	run(t, s)
	waitFor(t, func() bool { _, _, err := sp.Read(old); return err != nil })
	time.Sleep(200 * time.Millisecond)
	if got := up.got(); len(got) != 1 || got[0] != "old@example.net" {
		t.Fatalf("upstream received %v before a kick; want only old@example.net", got)
	}
	// Recovery's listing, when it has released what a dead process held,
	// leaves it waiting too.
	s.KickRecovered(false)
	time.Sleep(200 * time.Millisecond)
	if got := up.got(); len(got) != 1 {
		t.Fatalf("upstream received %v after recovery's listing; want only old@example.net", got)
	}
	ArrivalKick{s}.Kick(false)
	waitFor(t, func() bool { _, _, err := sp.Read(w.ID()); return err != nil })
	if got := up.got(); len(got) != 2 {
		t.Errorf("upstream received %v after the kick; want both", got)
	}
}

// TestRetryGivesFreshLifetime: a message that expired and that an
// administrator sent again (queue retry stamps Requeued) is deferred by
// its next temporary failure, not expired again at once with a second
// notice to its sender; its new lifetime ends as the first did.
func TestRetryGivesFreshLifetime(t *testing.T) {
	up := startUpstream(t)
	up.set("slow@example.net", &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "later"})
	sp, s, clk, id := setup(t, up.addr, "slow@example.net")
	ns := &notices{}
	s.opts.Notices = ns
	s.opts.MaxLifetime = 24 * time.Hour

	clk.Advance(25 * time.Hour)
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, st, _ := sp.Read(id); st != spool.Failed {
		t.Fatalf("state %v; want failed after the lifetime", st)
	}
	// What queue retry does to a failed message.
	c, err := sp.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	c.Env.Requeued = clk.Now()
	c.Env.NextAttempt = time.Time{}
	if err := c.Move(spool.Ready); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if env, st, _ := sp.Read(id); st != spool.Ready || env.NextAttempt.IsZero() {
		t.Fatalf("after the retry's deferral: state %v, next %v; want ready with a next attempt", st, env.NextAttempt)
	}
	ns.mu.Lock()
	n := len(ns.got)
	ns.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d notices; want only the first expiry's", n)
	}
	clk.Advance(25 * time.Hour)
	if _, err := s.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, st, _ := sp.Read(id); st != spool.Failed {
		t.Fatalf("state %v; want failed when the new lifetime has run out", st)
	}
}
