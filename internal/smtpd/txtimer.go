package smtpd

import (
	"io"
	"time"
)

// The transaction timeout's timer is started and stopped on go-smtp's
// goroutine, and stopped from others (a BDAT transaction's Data, Logout at
// shutdown): timerMu guards it.
func (ss *session) startTimer() {
	ss.timerMu.Lock()
	defer ss.timerMu.Unlock()
	if ss.s.opts.TransactionTimeout <= 0 || ss.timer != nil {
		return
	}
	// The credit: past the timeout the transaction goes on while the
	// client keeps sending at minDataRate or faster, judged over each
	// creditWindow, the first one ending at the timeout. A credit
	// expires with its window: a client that sent a burst and then
	// trickles (under the idle timeout) is cut one window later, where
	// a credit kept for the whole transaction held it for hours.
	window := min(ss.s.opts.TransactionTimeout, creditWindow)
	start, got := time.Now(), ss.received()
	mark, markGot := start, got
	ss.creditEnd.Store(0)
	var t *time.Timer
	t = time.AfterFunc(ss.s.opts.TransactionTimeout-window, func() {
		// A client still sending at minDataRate or faster has more
		// time: the limit is not to shut out a slow link's large
		// message, which it would at every retry.
		got := ss.received()
		if end := ss.creditEnd.Load(); end > 0 {
			got = min(got, end)
		}
		now := time.Now()
		first := now.Sub(start) < ss.s.opts.TransactionTimeout-window/2
		kept := time.Duration(got-markGot)*time.Second/minDataRate >= now.Sub(mark)
		mark, markGot = now, got
		ss.timerMu.Lock()
		if ss.timer != t {
			// Stopped as it fired: the transaction ended in time.
			ss.timerMu.Unlock()
			return
		}
		if first || kept {
			t.Reset(window)
			ss.timerMu.Unlock()
			return
		}
		ss.timerMu.Unlock()
		text := "421 4.4.2 " + ss.s.opts.Domain + " Error: transaction took too long"
		ss.s.log.Info("transaction timeout", "client", ss.client())
		ss.s.opts.MailLog.Reject(ss.client(), "timeout", text)
		if ss.cc != nil {
			// RFC 5321 section 3.8: said, then closed.
			ss.cc.closeSaying(text)
			return
		}
		ss.conn.Conn().Close()
	})
	ss.timer = t
}

// minDataRate, in octets a second, is the slowest text that still earns a
// transaction more time: each octet received adds 1/minDataRate s to the
// transaction timeout (Postfix's smtpd_min_data_rate). A message of the
// default size limit can take up to 5.7 hours on top at that rate.
const minDataRate = 500

// creditWindow is the period over which the client must keep minDataRate
// once the transaction timeout has passed (or the timeout, if shorter).
const creditWindow = time.Minute

// received is how many octets the client has sent on the session.
func (ss *session) received() int64 {
	if ss.cc == nil {
		return 0
	}
	return ss.cc.got.Load()
}

func (ss *session) stopTimer() {
	ss.timerMu.Lock()
	defer ss.timerMu.Unlock()
	if ss.timer != nil {
		ss.timer.Stop()
		ss.timer = nil
	}
}

// endCredit stops the octets the client sends from here on earning the
// transaction more time: the text was refused before its end (the size
// limit), and go-smtp reads the rest, however long, before it answers.
func (ss *session) endCredit() {
	ss.creditEnd.Store(max(ss.received(), 1))
}

// endWatch notes whether the text was read to its end, and calls onEnd
// once when it is. Data stops the transaction timer there: past the final
// dot (or BDAT LAST) the client sends nothing while the relay runs its
// filters or waits for its upstream, so the credit per window (startTimer)
// would cut it, for the relay's slowness; and the message, still accepted
// after that 421, came again at the client's retry, a duplicate.
type endWatch struct {
	r     io.Reader
	ended bool
	onEnd func()
}

func (e *endWatch) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err == io.EOF && !e.ended {
		e.ended = true
		if e.onEnd != nil {
			e.onEnd()
		}
	}
	return n, err
}
