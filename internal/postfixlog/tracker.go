package postfixlog

import (
	"encoding/json"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"time"
)

// Refusal is a relayed message's delivery that the remote server refused
// (status=bounced) or put off (status=deferred), with where the message
// came from.
type Refusal struct {
	// QueueID is the queue id of the refused delivery.
	QueueID string
	// ClientIP and ClientName are the client that submitted the message,
	// traced back through a content filter's re-injection if there was
	// one; "" if unknown (its client= line was not seen, or it was lost in
	// a re-injection that the log does not explain).
	ClientIP   string
	ClientName string
	// OrigQueueID is the queue id under which the client submitted the
	// message, if it was re-injected; "" otherwise.
	OrigQueueID string
	// Local: the message was submitted on this machine (pickup logged
	// it), and has no client. A message whose client is unknown for
	// another reason (its first line is not in the log) is not Local.
	Local bool
	// Reinjected says why a message that pickup logged is not Local but
	// of an unknown client: a content filter that a pipe(8) transport
	// runs re-injected it with sendmail (Postfix's simple content
	// filter), and no line links the copy to the client's original.
	Reinjected string
	From       string
	// FromKnown: the message's sender was logged (qmgr's from=, or
	// amavis's): From "" is then the null sender, not an unknown one.
	FromKnown bool
	To        string
	MessageID string
	// Relay is the relay as logged, "host[ip]:port".
	Relay     string
	RelayHost string
	Reply     string
	// Stage is what Reply answered (see Event.Stage).
	Stage  string
	Status string
	DSN    string
	// Time is the delivery line's timestamp.
	Time time.Time
}

// Reinjection says how a Tracker treats a content filter that re-injects
// messages (amavis): the message refused upstream is then not the one the
// client sent, and its own client is the filter.
type Reinjection int

const (
	// ReinjectAuto follows the links the log holds (amavis's queued_as,
	// smtpd's orig_client, a "queued as" reply from a local filter), and
	// otherwise takes the message's own client.
	ReinjectAuto Reinjection = iota
	// ReinjectAlways does the same, but takes a loopback client that no
	// link explains for unknown rather than for the original client.
	ReinjectAlways
	// ReinjectNever ignores the links: there is no re-injection.
	ReinjectNever
)

// maxHeld bounds the refusals held back; the oldest goes first.
const maxHeld = 1000

// PipeWindow is how far apart in the log a pipe(8) delivery and a local
// submission may be for the submission to be taken for its re-injection
// (when Tracker.FilterUIDs is empty). The filter's sendmail runs before
// pipe(8) logs the delivery, and pickup takes its copy at once; either
// line may come first.
const PipeWindow = 5 * time.Minute

// maxPickups bounds the local submissions waiting for a pipe(8)
// delivery's line.
const maxPickups = 1000

type recentPickup struct {
	ID string    `json:"qid"`
	At time.Time `json:"at"`
}

// Default bounds of a Tracker.
const (
	DefaultMaxAge     = 7 * 24 * time.Hour
	DefaultMaxEntries = 100000
)

// maxMessageID is the longest Message-ID kept: any client can have
// cleanup log one of 2000 characters for each queue id it leaves behind,
// and a longer one is no message's that encapsulation may look for.
const maxMessageID = 512

// Tracker reads Events in log order and remembers, per queue id, the
// client, sender and message id, so that a refused delivery can name them.
//
// A content filter logs the link between the two queue ids of a message
// (amavis's "queued_as:" line, the filter's "queued as" reply) after it has
// re-injected the message, and the re-injected copy may be refused
// upstream before that. So a refusal of a message whose client is a
// loopback address and that no link explains yet is held back: Add returns
// it once the link arrives, and Release when it has waited long enough
// (the message was not re-injected after all). Held refusals are part of
// the JSON, so that a restart does not lose them.
//
// Memory is bounded: a queue id is forgotten when qmgr logs it removed,
// when nothing was logged about it for MaxAge (each retry of a deferred
// message logs a qmgr line, which keeps it), and, the oldest first, when
// there are more than MaxEntries. A Tracker is not safe for concurrent use;
// its zero value is ready, with the defaults.
type Tracker struct {
	// Reinjection is how a content filter is followed.
	Reinjection Reinjection
	// MaxAge and MaxEntries bound memory; zero means the defaults.
	MaxAge     time.Duration
	MaxEntries int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// FilterUIDs are the uids (as pickup logs them) of the users that
	// content filters run as, re-injecting messages with sendmail: a
	// message they submit is a re-injection of a client's message (see
	// Refusal.Reinjected), any other user's is local. Without them, a
	// message picked up within PipeWindow of a pipe(8) delivery is taken
	// for a re-injection (but not with ReinjectNever).
	FilterUIDs []string

	pipedAt time.Time      // the log time of the last pipe(8) delivery
	pipeSvc string         // its service
	pickups []recentPickup // local submissions since, within PipeWindow

	msgs map[string]*message
	// sessions is each smtpd process's last queue id ("program[pid]"):
	// one process runs one session at a time.
	sessions map[string]string
	held     []*heldRefusal // in log order
	adds     int            // Adds since the last sweep
}

// heldRefusal is a refusal waiting for its message's link to the original.
type heldRefusal struct {
	Refusal Refusal   `json:"refusal"`
	Since   time.Time `json:"since"`
}

// message is what is known about one queue id. The fields are exported
// for the JSON of a checkpoint.
type message struct {
	ClientIP   string `json:"ip,omitempty"`
	ClientName string `json:"name,omitempty"`
	From       string `json:"from,omitempty"`
	HasFrom    bool   `json:"has_from,omitempty"`
	Local      bool   `json:"local,omitempty"` // pickup's: no client
	// Unlinked: pickup's message may be a content filter's
	// re-injection (Refusal.Reinjected), and is not Local.
	Unlinked string `json:"unlinked,omitempty"`
	// Requeued: postsuper logged it requeued; pickup's orig_id= naming
	// it is Postfix's.
	Requeued  bool   `json:"requeued,omitempty"`
	MessageID string `json:"msgid,omitempty"`
	// QueuedCut: qmgr logged the message, in a line cut at MaxLogText
	// bytes (a long sender) whose sender is not read: it is queued.
	QueuedCut bool `json:"queued_cut,omitempty"`
	// Left: the smtpd process that logged its client= has since logged
	// another's, before cleanup saw it: a transaction the client gave up
	// (RSET, QUIT, a DATA cut off), whose id nothing will remove.
	Left bool `json:"left,omitempty"`
	// Removed: qmgr logged it removed while a refusal of it waited for
	// its link; it is forgotten once that refusal goes.
	Removed bool      `json:"removed,omitempty"`
	Seen    time.Time `json:"seen"`
	// Origin is the message as the client submitted it, when this one is
	// a content filter's re-injection of it.
	Origin *origin `json:"origin,omitempty"`
}

type origin struct {
	QueueID    string `json:"qid,omitempty"`
	ClientIP   string `json:"ip,omitempty"`
	ClientName string `json:"name,omitempty"`
	Local      bool   `json:"local,omitempty"`
	// Forward: Postfix itself re-submitted the message, local(8) (an
	// alias, .forward) or postsuper -r (requeued): a link followed
	// whatever Reinjection says.
	Forward bool `json:"fwd,omitempty"`
}

// linked reports whether m's client is its origin's.
func (t *Tracker) linked(m *message) bool {
	return m.Origin != nil && (m.Origin.Forward || t.Reinjection != ReinjectNever)
}

func (t *Tracker) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// Len returns the number of queue ids remembered.
func (t *Tracker) Len() int { return len(t.msgs) }

// get returns the message for id, created if need be, and marks it seen.
func (t *Tracker) get(id string) *message {
	if t.msgs == nil {
		t.msgs = make(map[string]*message)
	}
	m := t.msgs[id]
	if m == nil {
		m = &message{}
		t.msgs[id] = m
		t.adds++
	}
	m.Seen = t.now()
	return m
}

// start returns the message of queue id for the first line of a message
// (smtpd's client=, pickup's uid=), forgetting an earlier message's: Postfix
// reuses short queue ids, and a message that never reached qmgr (refused
// at DATA, a lost connection) or whose "removed" line was lost leaves its
// entry behind; a later message with the same id must not inherit its
// client. What a content filter's line said about the id before its
// client= line (amavis's queued_as) is kept.
//
// A refusal of the earlier message that waits for its content filter's
// link (held) is returned as it is, its client the loopback address: the
// link can no longer be told from one to the new message, and the held
// refusal, filled in later, would name the new message's client and
// sender, who sent nothing that was refused.
func (t *Tracker) start(id string) (*message, []Refusal) {
	var orphans []Refusal
	if old := t.msgs[id]; old != nil && (old.ClientIP != "" || old.Local || old.HasFrom) {
		orphans = t.unhold(id, old)
		*old = message{}
	}
	return t.get(id), orphans
}

// Add takes the next event and returns the refusals it completes: the
// event's own, if it is a delivery that a remote server refused or put off
// with a reply, and any held refusal that its link explains.
func (t *Tracker) Add(e Event) []Refusal {
	defer t.bound()
	switch e.Kind {
	case Client:
		t.session(e)
		m, orphans := t.start(e.QueueID)
		m.ClientIP, m.ClientName = e.ClientIP, e.ClientName
		if t.Reinjection != ReinjectNever && (e.OrigClientIP != "" || e.OrigQueueID != "") {
			o := &origin{QueueID: e.OrigQueueID, ClientIP: e.OrigClientIP, ClientName: e.OrigClientName}
			if src := t.msgs[e.OrigQueueID]; o.ClientIP == "" && src != nil {
				o.ClientIP, o.ClientName = t.clientOf(src)
				o.Local = t.localOf(src)
			}
			m.Origin = o
		}
		return orphans
	case Pickup:
		m, orphans := t.start(e.QueueID)
		if e.OrigQueueID == "" || e.OrigQueueID == e.QueueID {
			m.Local = true
			t.pickedUp(e, m)
			return orphans
		}
		// postsuper -r: the message under its new queue id is still
		// the one its client sent (unknown if that is not in the log),
		// not a local submission. The orig_id= of a line that Postfix
		// cut (a long sender, logged unquoted) may be the sender's
		// text: only a message postsuper logged requeued is followed,
		// once.
		o := &origin{QueueID: e.OrigQueueID, Forward: true}
		if src := t.msgs[e.OrigQueueID]; src != nil && src.Requeued {
			o.ClientIP, o.ClientName = t.clientOf(src)
			o.Local = t.localOf(src)
			src.Requeued = false
		}
		m.Origin = o
		return orphans
	case Requeued:
		if m := t.msgs[e.QueueID]; m != nil {
			m.Requeued = true
		}
	case Notice:
		// cleanup and qmgr have logged the notice already; whatever an
		// earlier message with its queue id left behind (a RSET leaves
		// its client= without a "removed") is not its client.
		m := t.get(e.QueueID)
		m.ClientIP, m.ClientName, m.Local, m.Origin = "", "", false, nil
	case Disconnect:
		t.disconnect(e)
	case MessageID:
		// cleanup's first line of a message under an id whose smtpd
		// transaction was given up (Left: a RSET, a QUIT, a DATA cut
		// off, all before qmgr saw it): Postfix gave the id to a new
		// message, a notice bounce(8) makes, say, whose own line may
		// come after Gmail's refusal of it. The client that gave the
		// id up is not its client.
		if m := t.msgs[e.QueueID]; m != nil && m.Left && !queued(m) {
			m.ClientIP, m.ClientName, m.Local, m.Origin, m.Left = "", "", false, nil, false
		}
		if len(e.MessageID) <= maxMessageID {
			t.get(e.QueueID).MessageID = e.MessageID
		}
	case Queued:
		m := t.get(e.QueueID)
		if e.Cut > 0 {
			m.QueuedCut = true
			break
		}
		m.From, m.HasFrom = e.From, true
	case Removed:
		// A copy whose refusal waits for its link stays known: qmgr may
		// remove it before amavis's queued_as or the hand-over line names
		// it (Gmail refused it quicker than amavis answered Postfix).
		if m := t.msgs[e.QueueID]; m != nil && t.holding(e.QueueID) {
			m.Removed = true
		} else {
			delete(t.msgs, e.QueueID)
		}
	case Amavis:
		if t.Reinjection == ReinjectNever {
			break
		}
		// Postfix's own client= of the queue id amavis names is the
		// client. Without it, amavis's client is trusted when it is not
		// Postfix itself (XFORWARD gave it the real one); its second
		// address, a guess from Received fields that the sender can forge,
		// never is: the client is then unknown.
		o := &origin{QueueID: e.QueueID}
		if src := t.msgs[e.QueueID]; src != nil && (src.ClientIP != "" || src.Local) {
			o.ClientIP, o.ClientName = t.clientOf(src)
			o.Local = t.localOf(src)
		} else if e.ClientIP != "" && !isLoopback(e.ClientIP) {
			o.ClientIP = e.ClientIP
		}
		var out []Refusal
		for _, id := range t.queuedAs(e) {
			m := t.get(id)
			if m.Origin != nil && m.Origin.QueueID != "" && m.Origin.QueueID != e.QueueID {
				// A message is re-injected once: a second line naming
				// it for another original is the sender's text.
				continue
			}
			m.Origin = o
			if m.MessageID == "" && len(e.MessageID) <= maxMessageID {
				m.MessageID = e.MessageID
			}
			if !m.HasFrom && e.From != "" {
				m.From = e.From
			}
			out = append(out, t.unhold(id, m)...)
		}
		return out
	case Delivery:
		var out []Refusal
		if src := t.msgs[e.QueueID]; src != nil {
			src.Seen = t.now()
			// local(8) forwarded it: the copy's first line is cleanup's,
			// and whatever an earlier message with its queue id left
			// behind is not its client.
			if id := e.ForwardedAs; e.Status == "sent" && id != "" && id != e.QueueID {
				m := t.get(id)
				if m.Origin == nil || m.Origin.QueueID != e.QueueID {
					ip, name := t.clientOf(src)
					m.Origin = &origin{QueueID: e.QueueID, ClientIP: ip, ClientName: name, Local: t.localOf(src), Forward: true}
				}
			}
			// A local content filter's "250 ... queued as NEWID": the new
			// queue id is the message re-injected, over loopback as
			// queuedAs wants it. A message from another client under that
			// id is a later one that Postfix gave the copy's short queue
			// id to (the line came late), not the copy.
			if e.Status == "sent" && t.Reinjection != ReinjectNever && isLoopback(e.RelayIP) {
				for _, id := range e.QueuedAs {
					if m := t.msgs[id]; m != nil && m.Origin == nil && id != e.QueueID && isLoopback(m.ClientIP) {
						ip, name := t.clientOf(src)
						m.Origin = &origin{QueueID: e.QueueID, ClientIP: ip, ClientName: name, Local: t.localOf(src)}
						out = append(out, t.unhold(id, m)...)
					}
				}
			}
		}
		if e.Status == "sent" && e.PipeService != "" {
			t.piped(e)
		}
		if (e.Status != "bounced" && e.Status != "deferred") || e.Reply == "" {
			return out
		}
		r := Refusal{
			QueueID: e.QueueID, To: e.To, Relay: e.Relay, RelayHost: e.RelayHost,
			Reply: e.Reply, Stage: e.Stage, Status: e.Status, DSN: e.DSN, Time: e.Time,
		}
		m := t.msgs[e.QueueID]
		if m != nil {
			t.fill(&r, m)
			if t.Reinjection != ReinjectNever && m.Origin == nil && isLoopback(m.ClientIP) {
				if len(t.held) >= maxHeld {
					out = append(out, t.held[0].Refusal)
					t.held = t.held[1:]
				}
				t.held = append(t.held, &heldRefusal{Refusal: r, Since: t.now()})
				return out
			}
		}
		return append(out, r)
	}
	return nil
}

// session notes that the smtpd process of the client= line e has moved
// on to e's queue id: its last one, if qmgr never logged it, was given up
// (or is a message whose qmgr line is still to come: it goes first only
// among the ids qmgr never logged).
func (t *Tracker) session(e Event) {
	if e.Service != "smtpd" {
		return
	}
	key := e.Program + "[" + strconv.Itoa(e.PID) + "]"
	if prev, ok := t.sessions[key]; ok && prev != e.QueueID {
		if m := t.msgs[prev]; m != nil && !queued(m) {
			m.Left = true
		}
	}
	if t.sessions == nil || len(t.sessions) >= maxSessions {
		t.sessions = make(map[string]string)
	}
	t.sessions[key] = e.QueueID
}

// disconnect notes that the smtpd process of line e ended its session:
// its last transaction, if qmgr never logged it, was given up.
func (t *Tracker) disconnect(e Event) {
	key := e.Program + "[" + strconv.Itoa(e.PID) + "]"
	if prev, ok := t.sessions[key]; ok {
		if m := t.msgs[prev]; m != nil && !queued(m) {
			m.Left = true
		}
		delete(t.sessions, key)
	}
}

// maxSessions bounds the smtpd processes remembered: Postfix runs at most
// default_process_limit (100) of each service.
const maxSessions = 10000

// queued reports whether qmgr logged m: it is in Postfix's queue.
func queued(m *message) bool { return m.HasFrom || m.QueuedCut }

// queuedAs returns the re-injected copies that amavis's line e names: the
// ids of the one queued_as choice whose ids are all messages known, not
// linked to an original yet, and submitted over loopback, as amavis
// re-injects (a copy it re-injected with XFORWARD is linked by its own
// orig_queue_id); none if no choice, or more than one, is. The sender
// writes the Message-ID and, in some templates, the Subject: a line may
// hold more than one queued_as, or, from amavis as a milter (which
// re-injects nothing), one that only the sender wrote, naming another
// client's message. Postfix's hand-over line ("queued as") links the copy
// then. A choice that names a copy already linked to the line's own
// message (Postfix's hand-over line or XFORWARD came first) is amavis's:
// the others are the sender's, and none is taken.
func (t *Tracker) queuedAs(e Event) []string {
	choices := e.QueuedAsChoices
	if len(choices) == 0 && len(e.QueuedAs) > 0 {
		choices = [][]string{e.QueuedAs}
	}
	var pick []string
	n := 0
	for _, ids := range choices {
		open := true
		for _, id := range ids {
			m := t.msgs[id]
			if m != nil && m.Origin != nil && m.Origin.QueueID == e.QueueID {
				return nil
			}
			if m == nil || m.Origin != nil || !isLoopback(m.ClientIP) || id == e.QueueID {
				open = false
			}
		}
		if open {
			pick = ids
			n++
		}
	}
	if n != 1 {
		return nil
	}
	return pick
}

// pickedUp decides whether the local submission m (pickup's line e) may
// be a content filter's re-injection, by its user (FilterUIDs), or else
// by a pipe(8) delivery near it in the log. Only a pipe(8) line and
// pickup's uid= say so: Postfix writes them, and a client chooses neither.
// The decision only takes Local away (the client becomes unknown: a
// report); it never names a client.
func (t *Tracker) pickedUp(e Event, m *message) {
	switch {
	case len(t.FilterUIDs) > 0:
		if slices.Contains(t.FilterUIDs, e.UID) {
			m.Unlinked = "submitted by the content filter's user (uid " + e.UID + "), not linked to its original"
		}
	case t.Reinjection == ReinjectNever:
	case !t.pipedAt.IsZero() && near(e.Time, t.pipedAt):
		m.Unlinked = t.nearPipe()
	default:
		keep := t.pickups[:0]
		for _, p := range t.pickups {
			if near(p.At, e.Time) {
				keep = append(keep, p)
			}
		}
		t.pickups = append(keep, recentPickup{ID: e.QueueID, At: e.Time})
		if len(t.pickups) > maxPickups {
			t.pickups = slices.Delete(t.pickups, 0, len(t.pickups)-maxPickups)
		}
	}
}

// Cut takes note of a delivery line cut before its status (ParseCut):
// its relay= and status are lost, and it may be pipe(8)'s delivery to a
// content filter. A client chooses the length of the line (a long
// recipient that a catch-all alias takes), and the filter's copy of its
// message must not be made local by it: the local submissions near the
// line are taken as they are near a pipe(8) delivery.
func (t *Tracker) Cut(e Event) {
	if e.Kind == Delivery && e.Cut > 0 {
		e.PipeService = "(unknown: its delivery line was cut)"
		t.piped(e)
	}
}

// piped takes note of pipe(8)'s delivery e: the local submissions near
// it may be its command's re-injections.
func (t *Tracker) piped(e Event) {
	if len(t.FilterUIDs) > 0 || t.Reinjection == ReinjectNever {
		return
	}
	t.pipedAt, t.pipeSvc = e.Time, e.PipeService
	for _, p := range t.pickups {
		if m := t.msgs[p.ID]; m != nil && m.Local && m.Origin == nil && near(p.At, e.Time) {
			m.Unlinked = t.nearPipe()
		}
	}
	t.pickups = t.pickups[:0]
}

func (t *Tracker) nearPipe() string {
	return "submitted locally within " + PipeWindow.String() + " of a delivery to the pipe service " + t.pipeSvc +
		", which may have re-injected it"
}

// near reports whether two log times are within PipeWindow. A
// traditional syslog timestamp has no year (year 0): "Dec 31 23:59:58"
// and "Jan  1 00:00:01" are near.
func near(a, b time.Time) bool {
	within := func(d time.Duration) bool { return d <= PipeWindow && d >= -PipeWindow }
	return within(a.Sub(b)) || a.Year() == 0 && b.Year() == 0 &&
		(within(a.Sub(b.AddDate(1, 0, 0))) || within(a.Sub(b.AddDate(-1, 0, 0))))
}

// fill sets what r says about the message m.
func (t *Tracker) fill(r *Refusal, m *message) {
	r.ClientIP, r.ClientName = t.clientOf(m)
	r.Local = t.localOf(m)
	r.Reinjected = ""
	if !t.linked(m) && m.Local && m.Unlinked != "" {
		r.Reinjected = m.Unlinked
	}
	r.From, r.MessageID, r.FromKnown = m.From, m.MessageID, m.HasFrom || m.From != ""
	r.OrigQueueID = ""
	if t.linked(m) {
		r.OrigQueueID = m.Origin.QueueID
	}
}

// unhold returns the held refusals of queue id, now that m's link is
// known.
func (t *Tracker) unhold(id string, m *message) []Refusal {
	var out []Refusal
	keep := t.held[:0]
	for _, h := range t.held {
		if h.Refusal.QueueID == id {
			t.fill(&h.Refusal, m)
			out = append(out, h.Refusal)
			if m.Removed {
				delete(t.msgs, id)
			}
		} else {
			keep = append(keep, h)
		}
	}
	clear(t.held[len(keep):])
	t.held = keep
	return out
}

// holding reports whether a refusal of queue id is held back.
func (t *Tracker) holding(id string) bool {
	return slices.ContainsFunc(t.held, func(h *heldRefusal) bool { return h.Refusal.QueueID == id })
}

// Held returns the number of refusals held back.
func (t *Tracker) Held() int { return len(t.held) }

// Release returns the refusals held back for at least wait (all of them
// for 0), as they are: their client is the loopback address, or unknown
// with ReinjectAlways.
func (t *Tracker) Release(wait time.Duration) []Refusal {
	var out []Refusal
	now := t.now()
	keep := t.held[:0]
	for _, h := range t.held {
		if wait <= 0 || !now.Before(h.Since.Add(wait)) {
			if m := t.msgs[h.Refusal.QueueID]; m != nil {
				t.fill(&h.Refusal, m)
				if m.Removed {
					delete(t.msgs, h.Refusal.QueueID)
				}
			}
			out = append(out, h.Refusal)
		} else {
			keep = append(keep, h)
		}
	}
	clear(t.held[len(keep):])
	t.held = keep
	return out
}

// clientOf returns the original client of m.
func (t *Tracker) clientOf(m *message) (ip, name string) {
	if t.linked(m) {
		return m.Origin.ClientIP, m.Origin.ClientName
	}
	if t.Reinjection == ReinjectAlways && isLoopback(m.ClientIP) {
		return "", ""
	}
	return m.ClientIP, m.ClientName
}

// Client returns the original client of queue id, "" if unknown.
func (t *Tracker) Client(id string) (ip, name string) {
	if m := t.msgs[id]; m != nil {
		return t.clientOf(m)
	}
	return "", ""
}

// localOf reports whether m, or the message it re-injects, was submitted
// locally.
func (t *Tracker) localOf(m *message) bool {
	if t.linked(m) {
		return m.Origin.Local
	}
	return m.Local && m.Unlinked == ""
}

// bound forgets old queue ids, now and then (every 1000 new ones) or when
// over MaxEntries.
//
// Any client can leave queue ids behind at will: smtpd logs "client=" at
// the first accepted RCPT, and a RSET removes the queue file without a
// "removed" line. So the ids that qmgr never logged (queued) go first,
// and are kept to a tenth of MaxEntries: a flood of them must not push
// out the messages in Postfix's queue, whose refusals are still to come.
func (t *Tracker) bound() {
	maxEntries := t.MaxEntries
	if maxEntries <= 0 {
		maxEntries = DefaultMaxEntries
	}
	if t.adds < 1000 && len(t.msgs) <= maxEntries {
		return
	}
	t.adds = 0
	maxAge := t.MaxAge
	if maxAge <= 0 {
		maxAge = DefaultMaxAge
	}
	cutoff := t.now().Add(-maxAge)
	var unqueued []string
	for id, m := range t.msgs {
		switch {
		case m.Seen.Before(cutoff):
			delete(t.msgs, id)
		case !queued(m):
			unqueued = append(unqueued, id)
		}
	}
	// Down to 90%, so that the sort is not repeated at every Add.
	if maxUnqueued := maxEntries / 10; len(unqueued) > maxUnqueued {
		t.forget(unqueued, len(unqueued)-maxUnqueued+maxUnqueued/10)
	}
	if over := len(t.msgs) - maxEntries; over > 0 {
		ids := make([]string, 0, len(t.msgs))
		for id := range t.msgs {
			ids = append(ids, id)
		}
		t.forget(ids, over+maxEntries/10)
	}
}

// forget deletes the n first of ids: the transactions given up first,
// then the others never queued, then the least recently seen. A message
// still in DATA is never queued yet, and a flood of given-up transactions
// must not push it out.
func (t *Tracker) forget(ids []string, n int) {
	rank := func(m *message) int {
		switch {
		case queued(m):
			return 2
		case m.Left:
			return 0
		}
		return 1
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := t.msgs[ids[i]], t.msgs[ids[j]]
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra < rb
		}
		return a.Seen.Before(b.Seen)
	})
	for _, id := range ids[:min(n, len(ids))] {
		delete(t.msgs, id)
	}
}

// MarshalJSON saves what the Tracker remembers, for a Follower's
// checkpoint, so that a restarted enforcer still knows the clients of the
// messages in Postfix's queue.
func (t *Tracker) MarshalJSON() ([]byte, error) {
	return json.Marshal(trackerJSON{Msgs: t.msgs, Held: t.held, PipedAt: t.pipedAt, PipeSvc: t.pipeSvc, Pickups: t.pickups})
}

type trackerJSON struct {
	Msgs map[string]*message `json:"queue"`
	Held []*heldRefusal      `json:"held,omitempty"`
	// The last pipe(8) delivery and the local submissions since, so
	// that a restart between a filter's copy and its pipe line does
	// not make the copy local.
	PipedAt time.Time      `json:"piped_at,omitzero"`
	PipeSvc string         `json:"pipe_service,omitempty"`
	Pickups []recentPickup `json:"pickups,omitempty"`
}

// UnmarshalJSON restores what MarshalJSON saved.
func (t *Tracker) UnmarshalJSON(b []byte) error {
	var j trackerJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	for id, m := range j.Msgs {
		if m == nil || !isQueueID(id) {
			delete(j.Msgs, id)
		}
	}
	t.msgs, t.held = j.Msgs, nil
	t.pipedAt, t.pipeSvc = j.PipedAt, j.PipeSvc
	t.pickups = j.Pickups[:min(len(j.Pickups), maxPickups)]
	for _, h := range j.Held {
		if h != nil {
			t.held = append(t.held, h)
		}
	}
	return nil
}

func isLoopback(ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && a.IsLoopback()
}
