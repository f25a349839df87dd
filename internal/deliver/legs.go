package deliver

import (
	"context"
	"errors"
	"io"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/hostport"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/route"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// leg is one transaction's worth of recipients to one destination.
type leg struct {
	dst   route.Destination
	rcpts []string
}

// contentFilterKey prefixes the destination of the after-queue filter.
const contentFilterKey = "content_filter:"

// forwardToAddressKey prefixes the destination of a message whose envelope
// names its own next hop: E-MailRelay's X-MailRelay-ForwardToAddress,
// which its filters and routing scripts set.
const forwardToAddressKey = "forward_to_address:"

// directAddr is the address a destination is dialled at directly, without
// routing or MX: the content filter's, or a message's ForwardToAddress.
func directAddr(key string) (string, bool) {
	if a, ok := strings.CutPrefix(key, contentFilterKey); ok {
		return a, true
	}
	return strings.CutPrefix(key, forwardToAddressKey)
}

// busyRetry is how soon a message whose destination was at its limit is
// tried again.
const busyRetry = time.Second

var errBusy = errors.New("deliver: destination at its concurrency limit")

func (s *Scheduler) destination(sender, rcpt string) route.Destination {
	if s.opts.Router == nil {
		return route.Destination{Key: s.opts.Upstream, Upstream: s.opts.Upstream}
	}
	return s.opts.Router.Route(sender, rcpt)
}

// plan groups the pending recipients by destination, in the order they
// come, and splits groups at the recipient limit.
func (s *Scheduler) plan(env *spool.Envelope, pending []string) []leg {
	var keys []string
	groups := map[string]*leg{}
	for _, a := range pending {
		rt := s.destination(env.From, a)
		if cf := contentFilter(env, s.opts.ContentFilter); cf != "" {
			// Postfix's content_filter, or a FILTER action for this
			// message: the whole message goes to the filter first;
			// routing happens when it comes back.
			rt = route.Destination{Key: contentFilterKey + cf}
		} else if env.ForwardToAddress != "" {
			rt = route.Destination{Key: forwardToAddressKey + hostport.FilterAddr(env.ForwardToAddress)}
		} else {
			// A filter may have named the account to send with.
			rt = rt.WithAccount(env.ClientAccountSelector)
		}
		g := groups[rt.Key]
		if g == nil {
			g = &leg{dst: rt}
			groups[rt.Key] = g
			keys = append(keys, rt.Key)
		}
		g.rcpts = append(g.rcpts, a)
	}
	var legs []leg
	for _, k := range keys {
		g := groups[k]
		limit := g.dst.RecipientLimit
		if limit <= 0 {
			limit = s.opts.RecipientLimit
		}
		for len(g.rcpts) > 0 {
			n := len(g.rcpts)
			if limit > 0 && n > limit {
				n = limit
			}
			legs = append(legs, leg{dst: g.dst, rcpts: g.rcpts[:n]})
			g.rcpts = g.rcpts[n:]
		}
	}
	return legs
}

// runLeg carries one leg and records what each of its recipients got.
func (s *Scheduler) runLeg(ctx context.Context, wc *workerConn, c *spool.Claim, lg leg, results map[string]rcptResult, out *outcome) {
	defer func() {
		for _, a := range lg.rcpts {
			rr := results[a]
			rr.key = lg.dst.Key
			results[a] = rr
		}
	}()
	if until, ok := s.destPaused(lg.dst); ok {
		// The destination asked the relay to slow down: no session
		// until the pause ends.
		for _, a := range lg.rcpts {
			results[a] = rcptResult{until: until, relay: lg.dst.Key}
		}
		return
	}
	// A recipient paced alone waits; the others go.
	go_ := lg.rcpts[:0:0]
	for _, a := range lg.rcpts {
		if until, ok := s.paused(rcptPrefix + a); ok {
			results[a] = rcptResult{until: until, relay: lg.dst.Key}
		} else {
			go_ = append(go_, a)
		}
	}
	if len(go_) == 0 {
		return
	}
	all := lg.rcpts
	lg.rcpts = go_
	defer func() { lg.rcpts = all }()
	if lg.dst.Error.Code != 0 {
		rep := lg.dst.Error
		rep.Local = true // the route's own refusal (a transport's error:)
		for _, a := range lg.rcpts {
			results[a] = rcptResult{reply: rep, stage: "route", relay: "none"}
		}
		return
	}
	if lg.dst.Discard {
		text := "2.0.0 discarded"
		if lg.dst.DiscardText != "" {
			text += ": " + lg.dst.DiscardText
		}
		for _, a := range lg.rcpts {
			results[a] = rcptResult{sent: true, reply: reply.Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{text}, Local: true}, relay: "none"}
		}
		return
	}
	for try := 0; ; try++ {
		if !s.sendLeg(ctx, wc, c, lg, results, out, try) {
			return
		}
	}
}

// sendLeg carries one leg over a session: the worker's own, a parked one or
// a new one. It reports whether to try again: a reused session that failed
// before any reply (the upstream closed it while it was parked) is closed,
// and the leg goes once more on another, as with Postfix's connection cache.
// Nothing was accepted on the dead session, so nothing is sent twice.
func (s *Scheduler) sendLeg(ctx context.Context, wc *workerConn, c *spool.Claim, lg leg, results map[string]rcptResult, out *outcome, try int) (again bool) {
	env := c.Env
	conn, relay, passed, err := wc.get(ctx, lg.dst)
	if de := (*deadError)(nil); errors.As(err, &de) {
		// The destination failed a moment ago and is not dialled again
		// until de.until. A recipient already deferred by an earlier
		// attempt is not tried now (no attempt counted, its back-off
		// does not grow, no log line), as when its destination is
		// paced; a new one is deferred with the failure.
		fresh := lg.rcpts[:0:0]
		for _, a := range lg.rcpts {
			if deferredBefore(env, a) {
				results[a] = rcptResult{until: de.until, relay: lg.dst.Key}
			} else {
				fresh = append(fresh, a)
			}
		}
		lg.rcpts = fresh
		if len(fresh) == 0 {
			return false
		}
	}
	if errors.Is(err, errBusy) {
		for _, a := range lg.rcpts {
			results[a] = rcptResult{waiting: true}
		}
		return false
	}
	if relay == "" {
		relay = lg.dst.Key
	}
	if err != nil {
		out.connFailed = true
		var rep reply.Reply
		var re *remote.Error
		if errors.As(err, &re) && re.Perm {
			// A destination that cannot exist (no such domain, a null
			// MX): the recipients fail now.
			rep = re.AsReply()
		}
		for _, a := range lg.rcpts {
			results[a] = rcptResult{err: err, relay: relay, reply: rep}
		}
		if len(passed) > 0 {
			// The last host's failure is the recipients' own.
			s.logPassed(c, lg.rcpts, passed[:len(passed)-1])
		}
		return false
	}
	s.logPassed(c, lg.rcpts, passed)
	if _, delay := s.paced(lg.dst.Key, 0, lg.dst.RateDelay); delay > 0 {
		// The wait for destination_rate_delay may be long: what the
		// attempt's earlier legs delivered is recorded first, as
		// Postfix's queue manager records each delivery when it ends,
		// so that a relay that dies meanwhile does not send it again.
		s.checkpoint(c, results)
	}
	s.rateWait(ctx, lg.dst)
	reused := wc.carried > 0
	res, sendErr, ok := s.carry(ctx, c, lg, conn, relay, results, func() *remote.Message { return s.ahead(wc, conn, lg) })
	if !ok {
		return false
	}
	s.rateDone(lg.dst)
	wc.carried++
	if sendErr != nil && reused && try == 0 && (res == nil || res.Mail.Code == 0) && ctx.Err() == nil {
		s.log.Info("reused session failed before any reply; trying a new one", "destination", lg.dst.Key, "err", sendErr)
		wc.close()
		return true
	}
	if sendErr == nil {
		s.feedback(lg.dst, true)
	}
	record(lg.rcpts, conn, relay, res, sendErr, results)
	s.nextMX(ctx, c, lg, conn, passed, results)
	if conn.Broken() && !conn.Answered() {
		wc.close()
	}
	return false
}

// forwardFrom is the envelope sender a leg goes out with: SRS-rewritten
// if so configured, except to the content filter, which hands the
// message back.
func (s *Scheduler) forwardFrom(env *spool.Envelope, lg leg) string {
	if s.opts.Senders != nil && !strings.HasPrefix(lg.dst.Key, contentFilterKey) {
		return s.opts.Senders.Forward(env.From)
	}
	return env.From
}

// ahead is the envelope of the batch's next message when its commands can
// go behind this leg's final dot (remote.Conn.SendAhead): this is the
// message's last leg, and the next message, claimed now, goes whole to
// the same destination as it is, with nothing to wait for or convert.
// Anything the next attempt does otherwise only costs the session: a
// Send with other commands closes it before any content.
func (s *Scheduler) ahead(wc *workerConn, conn *remote.Conn, lg leg) *remote.Message {
	if !wc.lastLeg || wc.nextID == "" || wc.carried+1 >= s.opts.MessagesPerConnection ||
		s.opts.ClientFilter != nil || strings.HasPrefix(lg.dst.Key, contentFilterKey) {
		return nil
	}
	if _, delay := s.paced(lg.dst.Key, 0, lg.dst.RateDelay); delay > 0 {
		return nil // the upstream is to see the gap before each message
	}
	if _, ok := conn.Extension("PIPELINING"); !ok {
		// Nothing can begin behind the dot: the next message is not
		// claimed before its turn, and stays free for an administrator
		// (or the enforcer) to hold meanwhile.
		return nil
	}
	if wc.next == nil || wc.next.ID() != wc.nextID {
		wc.dropNext()
		c, err := s.opts.Spool.Claim(wc.nextID)
		if err != nil {
			wc.nextID = "" // deliverOne claims it again and says why not
			return nil
		}
		if s.holdNow(c) {
			wc.nextID = ""
			return nil
		}
		wc.next = c
	}
	env := wc.next.Env
	pending := env.Pending()
	legs := s.plan(env, pending)
	if len(pending) == 0 || len(legs) != 1 || legs[0].dst.Key != lg.dst.Key || legs[0].dst.Error.Code != 0 || legs[0].dst.Discard {
		return nil
	}
	if _, ok := s.destPaused(lg.dst); ok {
		return nil
	}
	for _, a := range pending {
		if _, ok := s.paused(rcptPrefix + a); ok {
			return nil
		}
	}
	eightBit := env.BodyType == "8bit"
	_, has8 := conn.Extension("8BITMIME")
	_, hasUTF8 := conn.Extension("SMTPUTF8")
	if (eightBit && !has8) || (env.SMTPUTF8 && !hasUTF8) {
		return nil
	}
	body, size, err := wc.next.Content()
	if err != nil {
		return nil
	}
	body.Close()
	msg := &remote.Message{From: s.forwardFrom(env, legs[0]), To: pending, Size: size, EightBit: eightBit, SMTPUTF8: env.SMTPUTF8}
	msg.MailParams, msg.RcptParams = dsnParams(env, pending)
	return msg
}

// workerConn is a worker's one session, kept open across messages to the
// same destination. While it is open it holds one of the destination's
// concurrency slots.
type workerConn struct {
	s       *Scheduler
	conn    *remote.Conn
	key     string
	relay   string
	carried int
	// nextID is the batch's next message; next is its claim, taken
	// early by ahead. lastLeg says the leg being sent is its message's
	// last.
	nextID  string
	next    *spool.Claim
	lastLeg bool
}

// takeNext hands over the early claim of id, if there is one.
func (w *workerConn) takeNext(id string) *spool.Claim {
	c := w.next
	if c == nil || c.ID() != id {
		return nil
	}
	w.next = nil
	return c
}

// dropNext releases an early claim that no attempt took.
func (w *workerConn) dropNext() {
	if w.next != nil {
		w.next.Unlock()
		w.next = nil
	}
}

func (w *workerConn) close() {
	if w.conn != nil {
		w.conn.Quit()
		w.s.release(w.key)
		w.conn, w.key, w.relay, w.carried = nil, "", "", 0
	}
}

// park gives the worker's session to the scheduler's idle pool, where any
// worker with a message for that destination takes it over, slot and all;
// a broken or used-up session is closed instead.
func (w *workerConn) park() {
	if w.conn == nil {
		return
	}
	// A session holding replies to a transaction begun ahead for a
	// message this batch did not send is closed: they are not the
	// replies to a later attempt at it.
	if w.conn.Broken() || w.conn.Answered() || w.carried >= w.s.opts.MessagesPerConnection {
		w.close()
		return
	}
	s := w.s
	s.mu.Lock()
	s.idle[w.key] = append(s.idle[w.key], idleConn{conn: w.conn, relay: w.relay, carried: w.carried, since: s.clock.Now()})
	s.idleCount++
	// At most one parked session per worker: beyond that the oldest
	// goes, so that many destinations never mean many open sockets.
	var evict idleConn
	var evictKey string
	if s.idleCount > s.opts.Connections {
		for k, l := range s.idle {
			if len(l) > 0 && (evict.conn == nil || l[0].since.Before(evict.since)) {
				evict, evictKey = l[0], k
			}
		}
		if evict.conn != nil {
			if l := s.idle[evictKey][1:]; len(l) == 0 {
				delete(s.idle, evictKey)
			} else {
				s.idle[evictKey] = l
			}
			s.idleCount--
		}
	}
	s.mu.Unlock()
	if evict.conn != nil {
		evict.conn.Quit()
		s.release(evictKey)
	}
	w.conn, w.key, w.relay, w.carried = nil, "", "", 0
}

// idleConn is a parked session, holding its destination's slot.
type idleConn struct {
	conn    *remote.Conn
	relay   string
	carried int
	since   time.Time
}

// takeIdle hands over a parked session to a destination, if there is one.
func (s *Scheduler) takeIdle(key string) (idleConn, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.idle[key]
	if len(l) == 0 {
		return idleConn{}, false
	}
	ic := l[len(l)-1]
	if len(l) == 1 {
		delete(s.idle, key)
	} else {
		s.idle[key] = l[:len(l)-1]
	}
	s.idleCount--
	return ic, true
}

// closeIdle closes the sessions parked for one destination.
func (s *Scheduler) closeIdle(key string) {
	s.mu.Lock()
	l := s.idle[key]
	delete(s.idle, key)
	s.idleCount -= len(l)
	s.mu.Unlock()
	for _, ic := range l {
		ic.conn.Quit()
		s.release(key)
	}
}

// reapIdle closes sessions parked longer than maxIdle (all of them when
// maxIdle is zero), freeing their slots.
func (s *Scheduler) reapIdle(maxIdle time.Duration) {
	now := s.clock.Now()
	var old []idleConn
	var keys []string
	s.mu.Lock()
	for k, l := range s.idle {
		keep := l[:0]
		for _, ic := range l {
			if maxIdle == 0 || now.Sub(ic.since) >= maxIdle {
				old = append(old, ic)
				keys = append(keys, k)
				s.idleCount--
			} else {
				keep = append(keep, ic)
			}
		}
		if len(keep) == 0 {
			delete(s.idle, k)
		} else {
			s.idle[k] = keep
		}
	}
	s.mu.Unlock()
	for i, ic := range old {
		ic.conn.Quit()
		s.release(keys[i])
	}
}

// get returns a session for rt: the worker's own if it goes there and may
// carry more, else a parked one, else a new one if the destination has a
// free slot and is not known to be down.
func (w *workerConn) get(ctx context.Context, rt route.Destination) (*remote.Conn, string, []route.PassedHost, error) {
	s := w.s
	// A broken session that holds replies to a transaction begun ahead
	// gives them to their message (a 421 to its MAIL), and sends nothing.
	if w.conn != nil && w.key == rt.Key && (!w.conn.Broken() || w.conn.Answered()) && w.carried < s.opts.MessagesPerConnection {
		return w.conn, w.relay, nil, nil
	}
	w.park()
	if ic, ok := s.takeIdle(rt.Key); ok {
		w.conn, w.key, w.relay, w.carried = ic.conn, rt.Key, ic.relay, ic.carried
		if !w.conn.Broken() {
			return w.conn, w.relay, nil, nil
		}
		w.close()
	}
	if d, ok := s.deadDest(rt.Key); ok {
		// Named as the failure that marked it was: the same relay= in
		// the mail log for every message behind it.
		return nil, d.relay, nil, &deadError{until: d.until, err: d.err}
	}
	if !s.tryAcquire(rt.Key, s.queueLimit(rt)) {
		return nil, "", nil, errBusy
	}
	var conn *remote.Conn
	var relay string
	var passed []route.PassedHost
	var err error
	if addr, ok := directAddr(rt.Key); ok {
		relay = addr
		conn, err = s.opts.Dial.Dial(ctx, addr)
	} else if nd, ok := s.opts.Router.(NextDialer); ok {
		conn, relay, passed, err = nd.DialHosts(ctx, rt)
	} else if s.opts.Router != nil {
		conn, relay, err = s.opts.Router.Dial(ctx, rt)
	} else {
		relay = s.opts.Upstream
		_, sel := rt.Account()
		conn, err = s.opts.Dial.Dial(remote.WithAccount(ctx, sel), s.opts.Upstream)
	}
	if err != nil {
		s.release(rt.Key)
		s.feedback(rt, false)
		s.markDead(rt.Key, relay, err)
		s.log.Warn("destination unavailable", "destination", rt.Key, "err", err)
		return nil, relay, passed, err
	}
	w.conn, w.key, w.relay = conn, rt.Key, relay
	return conn, relay, passed, nil
}

// tryAcquire takes a concurrency slot for a destination without waiting.
func (s *Scheduler) tryAcquire(key string, limit int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if limit > 0 && s.active[key] >= limit {
		return false
	}
	s.active[key]++
	return true
}

func (s *Scheduler) release(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active[key] <= 1 {
		delete(s.active, key)
	} else {
		s.active[key]--
	}
}

// markDead remembers that a destination could not be reached, so that the
// messages behind it are deferred without each trying again, until the
// minimum back-off has passed or a forced kick clears it.
func (s *Scheduler) markDead(key, relay string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dead[key] = deadDest{until: s.clock.Now().Add(s.opts.MinBackoff), err: err, relay: relay}
}

// deadDest returns the destination's recent failure, if it is not to be
// dialled again yet.
func (s *Scheduler) deadDest(key string) (deadDest, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.dead[key]
	if !ok {
		return deadDest{}, false
	}
	if !s.clock.Now().Before(d.until) {
		delete(s.dead, key)
		return deadDest{}, false
	}
	return d, true
}

// deadError is a destination's recent failure, given to the messages
// behind it until it may be dialled again.
type deadError struct {
	until time.Time
	err   error
}

func (e *deadError) Error() string { return e.err.Error() }
func (e *deadError) Unwrap() error { return e.err }

// deferredBefore reports whether an earlier attempt deferred addr.
func deferredBefore(env *spool.Envelope, addr string) bool {
	for _, r := range env.Recipients {
		if r.Addr == addr {
			return r.Status == spool.Deferred
		}
	}
	return false
}

func (s *Scheduler) clearDead() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.dead)
}

type deadDest struct {
	until time.Time
	err   error
	// relay is the next hop as the failed attempt named it.
	relay string
}

// rateWait keeps destination_rate_delay between deliveries to a
// destination; the worker waits, since it holds the destination's only slot.
// The delay counts from the end of the delivery before (rateDone), so the
// upstream sees at least that gap however long a delivery takes to start.
func (s *Scheduler) rateWait(ctx context.Context, rt route.Destination) {
	_, delay := s.paced(rt.Key, 0, rt.RateDelay)
	if delay <= 0 {
		return
	}
	s.mu.Lock()
	now := s.clock.Now()
	at := s.nextStart[rt.Key]
	if at.Before(now) {
		at = now
	}
	s.nextStart[rt.Key] = at.Add(delay)
	s.mu.Unlock()
	if wait := at.Sub(now); wait > 0 {
		select {
		case <-s.clock.After(wait):
		case <-ctx.Done():
		}
	}
}

// rateDone starts a destination's rate delay when a delivery ends.
func (s *Scheduler) rateDone(rt route.Destination) {
	_, delay := s.paced(rt.Key, 0, rt.RateDelay)
	if delay <= 0 {
		return
	}
	s.mu.Lock()
	if next := s.clock.Now().Add(delay); next.After(s.nextStart[rt.Key]) {
		s.nextStart[rt.Key] = next
	}
	s.mu.Unlock()
}

// contentFilter is where an unfiltered message goes first: its own FILTER
// destination ("smtp:[127.0.0.1]:10025", Postfix's transport:nexthop form),
// else the configured content filter, else nowhere. A notice the relay
// wrote itself (a bounce, a delay warning, a report) goes nowhere: in
// Postfix only smtpd and pickup add the content filter record, and
// bounce(8)'s notices pass no filter (FILTER_README: a filter that
// rejects a message has it "returned to sender"; a notice that quotes the
// rejected content, sent through the same filter, was rejected too, and
// the sender never heard).
func contentFilter(env *spool.Envelope, configured string) string {
	if env.Filtered || env.Bounce {
		return ""
	}
	if env.FilterTo != "" {
		return hostport.FilterAddr(env.FilterTo)
	}
	if configured != "" {
		return hostport.FilterAddr(configured)
	}
	return ""
}

// window is how many sessions a destination may have now: its limit, or
// with a slow start the window it has earned so far.
func (s *Scheduler) window(rt route.Destination, limit int) int {
	if rt.InitialConcurrency <= 0 || (limit > 0 && rt.InitialConcurrency >= limit) {
		return limit
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.windows[rt.Key]
	if !ok {
		w = rt.InitialConcurrency
		s.windows[rt.Key] = w
	}
	if limit > 0 && w > limit {
		w = limit
	}
	return w
}

// feedback grows a destination's window after a delivery, up to its
// concurrency limit, and shrinks it after a failure to connect (Postfix's
// concurrency feedback, simplified to whole sessions). Growth stops at the
// limit, as qmgr_queue_unthrottle's does, so that the first failure after
// a good spell takes a session away at once.
func (s *Scheduler) feedback(dst route.Destination, ok bool) {
	limit := dst.ConcurrencyLimit
	if limit <= 0 {
		limit = s.opts.DestinationConcurrency
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	w, tracked := s.windows[dst.Key]
	if !tracked {
		return
	}
	if ok && (limit <= 0 || w < limit) {
		s.windows[dst.Key] = w + 1
	} else if !ok && w > 1 {
		s.windows[dst.Key] = w - 1
	}
}

// readCloser reads from one reader and closes another.
type readCloser struct {
	io.Reader
	io.Closer
}
