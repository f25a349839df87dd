package deliver

import (
	"context"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/bounce"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/route"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// Clock is the scheduler's source of time.
type Clock interface {
	Now() time.Time
	// After is time.After.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Dialer opens an SMTP session with an upstream address (remote.Dialer).
type Dialer interface {
	Dial(ctx context.Context, addr string) (*remote.Conn, error)
}

// Router decides where each recipient goes and opens sessions there
// (route.Dialer). Without one, every recipient goes to Options.Upstream
// through Options.Dial.
type Router interface {
	Route(sender, rcpt string) route.Destination
	// Dial opens a session for a destination (resolving MX hosts and
	// trying them in order); relay names the host it reached, for logs.
	Dial(ctx context.Context, dst route.Destination) (conn *remote.Conn, relay string, err error)
}

// Notifier queues delivery status notifications (bounce.Notifier).
type Notifier interface {
	// Notify queues a notice of kind k to env's sender about rcpts.
	// content names the message's content file; it is asked for only
	// when a notice is queued, since it may have to write the file out.
	Notify(k bounce.Kind, env *spool.Envelope, content func() (string, error), rcpts []spool.Recipient) error
	// DoubleBounce queues a notice to the postmaster about a notice that
	// could not be delivered; false when env must simply be dropped (it
	// is a double bounce itself).
	DoubleBounce(env *spool.Envelope, content func() (string, error), rcpts []spool.Recipient) (bool, error)
}

// Refusals sees each refused recipient while its message is claimed (the
// enforcer) and says what to do about it.
type Refusals interface {
	Refused(r Result) Effect
}

// Holds says whether a message just claimed is to be held instead of
// sent. The enforcer remembers the messages a client banned had in flight
// (across a crash too); the queue asks at the claim, since it may claim
// them before the enforcer has found them ready again.
type Holds interface {
	HoldNow(id string) bool
}

// Verdicts reads the enforcement verdict of a refusal as far as the queue
// carries it out: pace (the upstream says the relay sends too fast) and
// alert (the relay's own account or set-up is at fault). The enforcement
// engine is the authority; StockVerdicts knows Gmail's replies until its
// plan carries these verdicts. An implementation over the engine's plan
// maps its pace action to VerdictPace (VerdictPaceRecipient when the
// enhanced code is X.2.1, one recipient receiving too fast) and its alert
// action to VerdictQuota for X.4.5 (a sending quota) or else VerdictAlert.
type Verdicts interface {
	Verdict(r Result) Verdict
}

// Verdict is what a refusal means for the queue.
type Verdict int

// Verdicts the scheduler acts on.
const (
	// VerdictNone: the reply is about this recipient or this moment.
	VerdictNone Verdict = iota
	// VerdictPace: the destination says the relay sends too fast (421
	// 4.7.28 "unusual rate"): no new session there for a while, then
	// fewer and slower ones.
	VerdictPace
	// VerdictPaceRecipient: this recipient receives too fast (4.2.1):
	// slow down to it alone.
	VerdictPaceRecipient
	// VerdictQuota: the smarthost account's sending quota is used up (550
	// 5.4.5 daily sending limit): everything to that destination waits
	// until the quota window has passed, and nothing is bounced.
	VerdictQuota
	// VerdictAlert: the relay's own set-up is at fault (its login was
	// refused, TLS, PTR): the recipient is deferred, never bounced.
	VerdictAlert
)

var verdictNames = [...]string{"none", "pace", "pace-recipient", "quota", "alert"}

func (v Verdict) String() string {
	if v >= 0 && int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "verdict?"
}
