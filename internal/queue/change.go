package queue

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// Action is a change an administrator makes to messages.
type Action int

// The actions, after postsuper -d, -h, -H and postqueue -f.
const (
	// Delete removes the message for good, whatever its state.
	Delete Action = iota
	// Hold moves a ready message to Held, where it is never delivered.
	Hold
	// Release moves a held message back to Ready, due at once.
	Release
	// Retry makes a ready or failed message Ready and due at once. The
	// recipients keep their statuses: the relay tries the failed ones
	// again when nothing else is pending (deliver.Scheduler.deliverOne).
	Retry
	// Flush makes a ready message due at once.
	Flush
	// Restore puts a quarantined message back into the spool
	// (spool.Restore); a message in the spool is not found.
	Restore
)

func (a Action) String() string {
	switch a {
	case Delete:
		return "delete"
	case Hold:
		return "hold"
	case Release:
		return "release"
	case Retry:
		return "retry"
	case Flush:
		return "flush"
	case Restore:
		return "restore"
	}
	return fmt.Sprintf("action(%d)", int(a))
}

// states are the states a message is selected in by --all and --match. A
// claimed message is selected where the administrator wants it stopped
// (delete, hold), so that it is reported busy; not where it is being
// delivered already, which is what retry and flush ask for; there Select
// takes only claims whose forwarder died (Message.StaleClaim).
func (a Action) states() []spool.State {
	switch a {
	case Delete:
		return []spool.State{spool.Ready, spool.Claimed, spool.Failed, spool.Held}
	case Hold:
		return []spool.State{spool.Ready, spool.Claimed}
	case Release:
		return []spool.State{spool.Held}
	case Retry:
		return []spool.State{spool.Ready, spool.Claimed, spool.Failed}
	case Flush:
		return []spool.State{spool.Ready, spool.Claimed}
	}
	return nil
}

// takes refuses a --state that names only states act never changes, so
// that "queue retry --state held" says what to do instead of "0 done".
func (a Action) takes(states []spool.State) error {
	if len(states) == 0 || slices.Contains(states, journalPseudo) {
		return nil // a dead relay's journal may hold a message of any state
	}
	var names []string
	for _, st := range a.states() {
		if slices.Contains(states, st) {
			return nil
		}
		names = append(names, st.String())
	}
	msg := fmt.Sprintf("queue %s takes %s messages, not %s", a, strings.Join(names, ", "), states[0])
	switch {
	case a == Hold && (slices.Contains(states, spool.Held) || slices.Contains(states, spool.Failed)):
		// Never a command that sends them: the opposite of a hold.
		msg += "; held and failed messages are not delivered anyway"
	case a == Hold:
	case slices.Contains(states, spool.Held):
		msg += "; queue release sends held messages"
	case slices.Contains(states, spool.Failed):
		msg += "; queue retry sends failed messages again"
	}
	return errors.New(msg)
}

// Outcome is what an action did to one message.
type Outcome string

// Outcomes. Done and Unchanged are success; the others mean the action
// could not be done, and the command's exit status says so.
const (
	Done      Outcome = "done"
	Unchanged Outcome = "unchanged" // already as asked: held, due, not held
	NotFound  Outcome = "not found"
	Busy      Outcome = "busy"    // locked by a forwarder or a receipt
	Refused   Outcome = "refused" // the action does not apply in this state
	Failed    Outcome = "error"
)

// Result is the outcome of an action on one message.
type Result struct {
	ID      string  `json:"id"`
	Outcome Outcome `json:"outcome"`
	// From and To are the states before and after; To is empty after a
	// delete or when nothing was done.
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Detail says why nothing was done, or what was done, in words.
	Detail string `json:"detail,omitempty"`
}

// OK reports whether the action was done or did not need doing.
func (r Result) OK() bool { return r.Outcome == Done || r.Outcome == Unchanged }

// Selector chooses messages by something other than their ids.
type Selector struct {
	// All selects every message in a state the action applies to.
	All bool
	// Match selects those whose sender, a recipient or a reply contains
	// the text, case-insensitively.
	Match string
	// States, if not empty, keeps only messages in these states (with Ready, Postfix's
	// "postsuper -d ALL deferred"); alone it selects all of them.
	States []spool.State
}

// Select returns the ids of the messages sel chooses for act, in arrival
// order.
func Select(s *spool.Spool, act Action, sel Selector) ([]string, error) {
	if err := act.takes(sel.States); err != nil {
		return nil, err
	}
	msgs, err := List(s, Filter{States: act.states()})
	if err != nil {
		return nil, err
	}
	var ids []string
	for i := range msgs {
		if len(sel.States) > 0 && !hasState(sel.States, msgs[i].State) ||
			(act == Retry || act == Flush) && msgs[i].State == spool.Claimed.String() && !msgs[i].StaleClaim {
			continue
		}
		if sel.chooses(&msgs[i]) {
			ids = append(ids, msgs[i].ID)
		}
	}
	// A message only a dead relay's journal holds cannot be changed
	// until a relay writes it out; selected all the same, in the state it
	// was accepted in, it is reported (not found: only in the journal)
	// and the exit status says so, rather than "0 done" while the relay's
	// next start sends what the administrator asked to stop.
	for _, j := range journalled(s) {
		st, m := j.State.String(), journalView(j)
		if hasState(act.states(), st) && (len(sel.States) == 0 || hasState(sel.States, st) || hasState(sel.States, JournalState)) && sel.chooses(&m) {
			ids = append(ids, m.ID)
		}
	}
	return ids, nil
}

// chooses reports whether sel picks m, among those in the right states.
func (sel Selector) chooses(m *Message) bool {
	return sel.All || len(sel.States) > 0 && sel.Match == "" || sel.Match != "" && matchText(m, sel.Match)
}

// Apply does act to each message in ids, one at a time under the message's
// lock, and returns one result per id in the same order. It never stops
// early: a message that cannot be changed is reported and the next one
// tried. For Flush, ids are usually what Select returned.
func Apply(s *spool.Spool, act Action, ids []string) []Result {
	out := make([]Result, 0, len(ids))
	for _, id := range ids {
		out = append(out, applyOne(s, act, id))
	}
	return out
}

// lockYoung locks a message; one accepted in the last few seconds may
// still be served from the daemon's memory (spool.ServedWindow), so a
// command in another process waits for its files rather than report it
// gone.
func lockYoung(s *spool.Spool, id string) (*spool.Claim, error) {
	var c *spool.Claim
	err := waitYoung(id, func() (err error) {
		c, err = s.Lock(id)
		return err
	})
	return c, err
}

// waitYoung calls try until it finds message id, or, if it is not found,
// until the window in which the daemon may still serve a message of id's
// time from memory has passed. An id whose time lies ahead of the clock
// (a mistyped first digit: 7B15... for 6B15...) was made by no daemon, so
// the wait never runs past one window from now.
func waitYoung(id string, try func() error) error {
	err := try()
	t, ok := spool.IDTime(id)
	if !ok {
		return err
	}
	now := time.Now()
	end := t.Add(spool.ServedWindow + time.Second)
	if limit := now.Add(spool.ServedWindow + time.Second); end.After(limit) {
		end = limit
	}
	if t.After(now.Add(time.Second)) {
		end = now // not an id of this clock's: nothing to wait for
	}
	for errors.Is(err, spool.ErrNotFound) && time.Now().Before(end) {
		time.Sleep(50 * time.Millisecond)
		err = try()
	}
	return err
}

func applyOne(s *spool.Spool, act Action, id string) Result {
	r := Result{ID: id}
	if !spool.ValidID(id) {
		r.Outcome, r.Detail = NotFound, "not a message id"
		return r
	}
	if act == Restore {
		return restore(s, r)
	}
	c, err := lockYoung(s, id)
	if err != nil && act == Delete && !errors.Is(err, spool.ErrBusy) {
		// No claim without a readable envelope and its content
		// (ErrNotFound for an envelope whose content is missing);
		// deleting needs neither.
		st, rerr := s.RemoveUnreadable(id)
		if rerr == nil {
			r.From, r.Outcome, r.Detail = st.String(), Done, "deleted"
			return r
		}
	}
	if err != nil {
		return lockFailed(s, r, err)
	}
	// Under the lock nobody else renames the envelope, so the state read
	// now holds until the claim is released.
	_, st, err := s.Read(id)
	if err != nil {
		c.Unlock()
		r.Outcome, r.Detail = Failed, err.Error()
		return r
	}
	r.From = st.String()
	if others := otherEnvelopes(s, id, st); act != Delete && len(others) > 0 {
		// Made by hand: which one is the message is the administrator's
		// call (queue list says so); a rename would replace the other.
		return unlock(c, r, Refused, fmt.Sprintf("several envelope files (also %s): remove all but one first",
			strings.Join(others, " ")))
	}
	if st == spool.Claimed {
		// A .busy envelope whose lock we got: its forwarder died. It
		// is as good as Ready (Recover would make it so).
		st = spool.Ready
	}
	var to spool.State
	switch {
	case act == Delete:
		if err := c.Delete(); err != nil {
			r.Outcome, r.Detail = Failed, err.Error()
			return r
		}
		r.Outcome, r.Detail = Done, "deleted"
		return r
	case act == Hold && st == spool.Ready:
		to, r.Detail = spool.Held, "held"
	case act == Hold && st == spool.Held:
		return unlock(c, r, Unchanged, "already held")
	case act == Release && st == spool.Held,
		act == Retry && (st == spool.Ready || st == spool.Failed),
		act == Flush && st == spool.Ready:
		if st == spool.Ready && c.Env.NextAttempt.IsZero() && r.From == spool.Ready.String() {
			return unlock(c, r, Unchanged, "already due")
		}
		c.Env.NextAttempt = time.Time{}
		if st == spool.Failed {
			c.Env.Requeued = time.Now()
		}
		to, r.Detail = spool.Ready, "due now"
		if act == Release {
			r.Detail = "released, due now"
		}
	case act == Release && st == spool.Ready:
		return unlock(c, r, Unchanged, "not held")
	case st == spool.Held:
		return unlock(c, r, Refused, "held; release it first")
	case st == spool.Failed:
		return unlock(c, r, Refused, "failed; use queue retry to send it again, or queue delete")
	default:
		return unlock(c, r, Refused, fmt.Sprintf("cannot %s a %s message", act, r.From))
	}
	if err := c.Move(to); err != nil {
		c.Unlock()
		r.Outcome, r.Detail = Failed, err.Error()
		return r
	}
	r.Outcome, r.To = Done, to.String()
	return r
}

func unlock(c *spool.Claim, r Result, o Outcome, detail string) Result {
	r.Outcome, r.Detail = o, detail
	if err := c.Unlock(); err != nil {
		r.Outcome, r.Detail = Failed, err.Error()
	}
	return r
}

// lockFailed turns a Lock error into a result, saying who holds a busy
// message when the envelope's name tells.
func lockFailed(s *spool.Spool, r Result, err error) Result {
	switch {
	case errors.Is(err, spool.ErrNotFound):
		// No claim without the content file either: a torn message
		// is still there, and is named as "queue show" names it.
		m, err := Get(s, r.ID)
		if err == nil && m.Error != "" {
			err = errors.New(m.Error)
		}
		if err != nil && !errors.Is(err, spool.ErrNotFound) {
			r.Outcome, r.Detail, r.From = Failed, err.Error(), m.State
			return r
		}
		r.Outcome = NotFound
		r.Detail = "no such message"
		if err := notInQueue(s, r.ID); errors.Is(err, errJournalOnly) {
			// There, but not to be changed yet: refused, also when
			// selected by --all (never "gone since it was selected").
			r.Outcome, r.Detail, r.From = Refused, err.Error(), JournalState
		} else if err != nil {
			r.Detail = err.Error()
		} else if r.ID == "ALL" {
			// postsuper's keyword, typed from habit.
			r.Detail = `no such message; "ALL" is postsuper's word: use --all, or --state ready for "ALL deferred"`
		}
	case errors.Is(err, spool.ErrBusy):
		r.Outcome = Busy
		r.Detail = "locked by another process"
		if _, st, err := s.Read(r.ID); err == nil {
			r.From = st.String()
			switch st {
			case spool.Claimed:
				r.Detail = "being delivered now; left alone"
			case spool.New:
				r.Detail = "being received; left alone"
			}
		}
	default:
		r.Outcome, r.Detail = Failed, err.Error()
	}
	return r
}

// Commands are the "queue" subcommands and the switches each takes besides
// the common ones (--spool-dir, --config, --json).
var Commands = map[string][]string{
	"list":       {"sender", "recipient", "reply", "state"},
	"show":       {"body"},
	"delete":     {"all", "match", "state"},
	"hold":       {"all", "match", "state"},
	"release":    {"all", "match", "state"},
	"retry":      {"all", "match", "state"},
	"flush":      nil,
	"quarantine": nil,
	"restore":    nil,
}

// CommandNames are the names of the queue commands, sorted.
func CommandNames() []string { return slices.Sorted(maps.Keys(Commands)) }

// postfixWords are Postfix's and E-MailRelay's words for what the queue
// commands do another way, with what to use instead.
var postfixWords = map[string]string{
	"requeue": "nothing to requeue (postsuper -r): the next attempt uses the tables in force; " +
		"relaykeeper queue flush makes it now",
}

// UnknownHint says, after "unknown command NAME", what to use instead of
// a command other mail systems have; "" for any other name.
func UnknownHint(name string) string {
	if h, ok := postfixWords[strings.ToLower(name)]; ok {
		return ": " + h
	}
	return ""
}

// ParseAction returns the action a change command names.
func ParseAction(name string) (Action, bool) {
	for a := Delete; a <= Restore; a++ {
		if a.String() == name {
			return a, true
		}
	}
	return 0, false
}

// otherEnvelopes names the envelope files message id has besides the one
// of state st: none, unless made by hand or by a script (relaykeeper never
// makes two; queue list shows such a message as damaged).
func otherEnvelopes(s *spool.Spool, id string, st spool.State) []string {
	var names []string
	for _, o := range []spool.State{spool.Ready, spool.Claimed, spool.Failed, spool.Held} {
		if p := s.EnvelopePath(id, o); o != st {
			if _, err := os.Lstat(p); err == nil {
				names = append(names, filepath.Base(p))
			}
		}
	}
	return names
}
