package bounce

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// Notifier queues notices in the spool, where they wait for delivery like
// any other message: a notice goes from the null sender to the message's
// sender; a notice that cannot be delivered goes to the postmaster as a
// double bounce.
//
// Loops cannot form: no notice is made about a notice (Needed), a double
// bounce comes from DoubleBounceSender, and a double bounce that cannot be
// delivered is only logged, as Postfix discards mail to its double-bounce
// address.
type Notifier struct {
	Spool *spool.Spool
	// ReportingMTA is this host's name: notices are from
	// MAILER-DAEMON@ReportingMTA, and unqualified addresses get it.
	ReportingMTA string
	// RemoteMTA is the smarthost the replies came from, "" when routing
	// decides per recipient.
	RemoteMTA string
	// MaxQueueLifetime is how long the relay keeps trying, for a delay
	// warning's "will retry until".
	MaxQueueLifetime time.Duration
	// MaxReturnSize is Options.MaxReturnSize (bounce_size_limit).
	MaxReturnSize int64
	// Postmaster gets double bounces (Postfix's 2bounce_notice_recipient);
	// "postmaster" when empty. Without an @, ReportingMTA is appended.
	Postmaster string
	MailLog    *maillog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// DoubleBounceSender is the local part a double bounce comes from
// (Postfix's double_bounce_sender): a message from it that fails is
// discarded, which ends any loop.
const DoubleBounceSender = "double-bounce"

func (n *Notifier) now() time.Time {
	if n.Now != nil {
		return n.Now()
	}
	return time.Now()
}

func (n *Notifier) qualify(addr string) string {
	if addr == "" {
		addr = "postmaster"
	}
	if !strings.Contains(addr, "@") {
		addr += "@" + n.ReportingMTA
	}
	return addr
}

// IsDoubleBounce reports a message that is itself a double bounce.
func (n *Notifier) IsDoubleBounce(env *spool.Envelope) bool {
	return env.Bounce && strings.EqualFold(env.From, n.qualify(DoubleBounceSender))
}

// Notify queues a notice of kind k about rcpts, keeping only those whose
// NOTIFY asks for that kind; nothing for a message that needs none.
// content names the message's content file, and is called only then.
func (n *Notifier) Notify(k Kind, env *spool.Envelope, content func() (string, error), rcpts []spool.Recipient) error {
	if !Needed(env, k) {
		return nil
	}
	allowed := map[string]bool{}
	for _, rc := range Recipients(env, k) {
		allowed[rc.Addr] = true
	}
	var want []spool.Recipient
	for _, rc := range rcpts {
		if allowed[rc.Addr] {
			want = append(want, rc)
		}
	}
	if len(want) == 0 {
		return nil
	}
	id, err := n.queue(env, content, k, want, env, "", env.From)
	if err != nil {
		return err
	}
	n.MailLog.Notice(id, env.ID, k.String(), env.From, len(want))
	return nil
}

// DoubleBounce queues, for the postmaster, a failure notice about a notice
// that could not be delivered, with that notice returned in it. It returns
// false, and queues nothing, when env is a double bounce itself: that one
// is only to be logged and dropped.
func (n *Notifier) DoubleBounce(env *spool.Envelope, content func() (string, error), rcpts []spool.Recipient) (bool, error) {
	if n.IsDoubleBounce(env) || len(rcpts) == 0 {
		return false, nil
	}
	pm := n.qualify(n.Postmaster)
	// The report is written as if to the postmaster, who sent nothing:
	// Build only needs someone to address it to.
	about := *env
	about.From = pm
	id, err := n.queue(&about, content, Failure, rcpts, env, n.qualify(DoubleBounceSender), pm)
	if err != nil {
		return false, err
	}
	n.MailLog.Notice(id, env.ID, "2bounce", pm, len(rcpts))
	return true, nil
}

// queue builds the notice about env and commits it from sender to rcpt.
func (n *Notifier) queue(env *spool.Envelope, contentPath func() (string, error), k Kind, rcpts []spool.Recipient, orig *spool.Envelope, sender, rcpt string) (string, error) {
	path, err := contentPath()
	if err != nil {
		return "", fmt.Errorf("bounce: notice for %s: %w", orig.ID, err)
	}
	content, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("bounce: notice for %s: %w", orig.ID, err)
	}
	defer content.Close()
	now := n.now()
	w, err := n.Spool.Create(now)
	if err != nil {
		return "", fmt.Errorf("bounce: notice for %s: %w", orig.ID, err)
	}
	opts := Options{ReportingMTA: n.ReportingMTA, RemoteMTA: n.RemoteMTA, Now: now, MaxReturnSize: n.MaxReturnSize}
	if n.MaxQueueLifetime > 0 {
		// The lifetime counts from a queue retry of a failed message, as
		// the scheduler's does (X-Relaykeeper-Requeued).
		opts.RetryUntil = orig.Arrival.Add(n.MaxQueueLifetime)
		if orig.Requeued.After(orig.Arrival) {
			opts.RetryUntil = orig.Requeued.Add(n.MaxQueueLifetime)
		}
	}
	ew := &eightBitWriter{w: w}
	if err := Build(ew, env, content, k, rcpts, opts); err != nil {
		w.Abort()
		return "", fmt.Errorf("bounce: notice for %s: %w", orig.ID, err)
	}
	bodyType := orig.BodyType
	if ew.seen && (bodyType == "" || bodyType == "7bit") {
		// 8-bit though the original was not: an upstream's reply or
		// an address in UTF-8. Declared so, the notice goes with
		// BODY=8BITMIME, or converted to 7 bits (RFC 6152).
		bodyType = "8bit"
	}
	ne := &spool.Envelope{
		From:       sender,
		Recipients: []spool.Recipient{{Addr: rcpt, Status: spool.Pending}},
		BodyType:   bodyType,
		SMTPUTF8:   orig.SMTPUTF8,
		Client:     "local",
		Helo:       n.ReportingMTA,
		Arrival:    now,
		Bounce:     true,
	}
	if err := w.Finish(ne); err != nil {
		return "", fmt.Errorf("bounce: notice for %s: %w", orig.ID, err)
	}
	return w.ID(), nil
}

// eightBitWriter passes what is written on to w and notes whether any of
// it was 8-bit.
type eightBitWriter struct {
	w    io.Writer
	seen bool
}

func (e *eightBitWriter) Write(p []byte) (int, error) {
	e.seen = e.seen || !ascii(p)
	return e.w.Write(p)
}
