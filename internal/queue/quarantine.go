package queue

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/internal/termsafe"
)

// "queue quarantine" and "queue restore": what recovery set aside, as
// Postfix keeps damaged queue files in its corrupt queue, and putting a
// repaired message back.

// QuarantinedMessage is one message in the quarantine directory.
type QuarantinedMessage struct {
	ID    string   `json:"id"`
	Files []string `json:"files"`
	// State is its envelope's state when it was set aside ("new": the
	// client was never told 250); empty without exactly one envelope.
	State string `json:"state,omitempty"`
	// Size is the content's size, -1 without a content file.
	Size  int64     `json:"size"`
	Moved time.Time `json:"quarantined,omitzero"`
	// Sender and Recipients are the envelope's, when it parses.
	Sender     *string     `json:"sender,omitempty"`
	Recipients []Recipient `json:"recipients,omitempty"`
	Restorable bool        `json:"restorable"`
	// Problem says what to repair before it can be restored.
	Problem string `json:"problem,omitempty"`
}

// QuarantineListing is what "queue quarantine" shows.
type QuarantineListing struct {
	Dir      string               `json:"dir"`
	Messages []QuarantinedMessage `json:"messages"`
	// Journals are journal segments kept after a damaged record; the
	// records before it were replayed (spool.md).
	Journals []string `json:"journals"`
}

// ListQuarantine gathers what the spool's quarantine directory holds.
func ListQuarantine(s *spool.Spool) (QuarantineListing, error) {
	qs, journals, err := s.ListQuarantine()
	if err != nil {
		return QuarantineListing{}, fmt.Errorf("queue: %w", err)
	}
	l := QuarantineListing{Dir: s.QuarantinePath(), Messages: []QuarantinedMessage{}, Journals: journals}
	if l.Journals == nil {
		l.Journals = []string{}
	}
	for _, q := range qs {
		m := QuarantinedMessage{ID: q.ID, Files: q.Files, Size: q.Size, Moved: q.Moved,
			Restorable: q.Problem == "", Problem: q.Problem}
		if len(q.States) == 1 {
			m.State = q.States[0].String()
		}
		if q.Env != nil {
			v := view(q.Env, spool.Ready)
			m.Sender, m.Recipients = &v.Sender, v.Recipients
		}
		l.Messages = append(l.Messages, m)
	}
	return l, nil
}

// WriteText prints a line per message, with its files and what to do
// about it, then the journal segments. As in the queue's listing, what a
// terminal would take for a control is escaped (termsafe.Writer), and the
// id column is as wide as the longest id (an E-MailRelay file name's).
func (l QuarantineListing) WriteText(w io.Writer) {
	w = termsafe.Writer{W: w}
	if len(l.Messages) == 0 && len(l.Journals) == 0 {
		fmt.Fprintf(w, "Quarantine is empty (%s)\n", l.Dir)
		return
	}
	fmt.Fprintf(w, "Quarantine %s\n", l.Dir)
	idw := 16
	for _, m := range l.Messages {
		idw = max(idw, len(m.ID))
	}
	if len(l.Messages) > 0 {
		fmt.Fprintf(w, "%-*s  %8s  %-19s  %-7s  %s\n", idw, "ID", "SIZE", "QUARANTINED (UTC)", "STATE", "SENDER")
	}
	for _, m := range l.Messages {
		size, sender := "-", "(envelope unreadable)"
		if m.Size >= 0 {
			size = fmt.Sprint(m.Size)
		}
		if m.Sender != nil {
			sender = angle(*m.Sender)
		}
		fmt.Fprintf(w, "%-*s  %8s  %-19s  %-7s  %s\n", idw, m.ID, size, m.Moved.UTC().Format(TimeFormat), m.State, sender)
		fmt.Fprintf(w, "    files: %s\n", strings.Join(m.Files, " "))
		for _, r := range m.Recipients {
			fmt.Fprintf(w, "    %-8s  %s\n", r.Status, angle(r.Addr))
		}
		switch {
		case !m.Restorable:
			fmt.Fprintf(w, "    not restorable: %s; then: relaykeeper queue restore %s\n", m.Problem, m.ID)
		case m.State == spool.New.String():
			fmt.Fprintf(w, "    its client was never told 250 (it may have sent it again); relaykeeper queue restore %s puts it back held\n", m.ID)
		default:
			fmt.Fprintf(w, "    restorable: relaykeeper queue restore %s\n", m.ID)
		}
	}
	for _, j := range l.Journals {
		fmt.Fprintf(w, "journal segment %s: kept after a damaged record; the records before it were replayed, the messages found after it set aside held (above, or held in the queue after a power loss)\n", j)
	}
}

// notInQueue says where a message that is not in the queue's files is:
// set aside by recovery, or only in the journal of a relay that died; nil
// when neither has it.
func notInQueue(s *spool.Spool, id string) error {
	if s.InQuarantine(id) {
		return errors.New("not in the queue: recovery set it aside (see relaykeeper queue quarantine)")
	}
	if journalIDs(s)[id] {
		return errJournalOnly
	}
	return nil
}

// errJournalOnly is notInQueue's answer for a message that only a dead
// relay's journal holds: it exists, but no command can change it yet.
var errJournalOnly = errors.New("only in the journal of a relay that died: start the relay (or run relaykeeper --as-client) to write it out first")

// journalCache keeps journalOnly's ids for a few seconds, so that a
// command given thousands of ids already delivered reads a dead relay's
// journal once, not once per id.
var journalCache struct {
	sync.Mutex
	s   *spool.Spool
	at  time.Time
	ids map[string]bool
}

func journalIDs(s *spool.Spool) map[string]bool {
	c := &journalCache
	c.Lock()
	defer c.Unlock()
	if c.s != s || time.Since(c.at) > 5*time.Second {
		c.s, c.at, c.ids = s, time.Now(), map[string]bool{}
		for _, m := range journalOnly(s, Filter{}) {
			c.ids[m.ID] = true
		}
	}
	return c.ids
}

// restore is Apply's Restore of one message.
func restore(s *spool.Spool, r Result) Result {
	from, to, err := s.Restore(r.ID)
	switch {
	case errors.Is(err, spool.ErrNotFound):
		r.Outcome, r.Detail = NotFound, "not in the quarantine"
	case errors.Is(err, spool.ErrInSpool):
		r.Outcome, r.Detail = Refused, err.Error()+"; left in the quarantine"
	case errors.Is(err, spool.ErrBusy):
		r.Outcome, r.Detail = Busy, "another process is restoring it"
	case err != nil:
		r.Outcome, r.Detail = Refused, err.Error()
	case from == spool.New:
		r.Outcome, r.From, r.To = Done, "quarantined", to.String()
		r.Detail = "restored held (its client was never told 250 and may have sent it again; queue release delivers it)"
	default:
		r.Outcome, r.From, r.To, r.Detail = Done, "quarantined", to.String(), "restored"
	}
	return r
}

// WriteQuarantine is "queue quarantine": the listing, as text or JSON.
func WriteQuarantine(s *spool.Spool, w io.Writer, asJSON bool) error {
	l, err := ListQuarantine(s)
	switch {
	case err != nil:
		return err
	case asJSON:
		return WriteJSON(w, l)
	}
	l.WriteText(w)
	return nil
}
