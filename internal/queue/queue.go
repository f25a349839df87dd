// Package queue is the administrator's view of the spool: listing and showing
// messages, and deleting, holding, releasing and retrying them, as Postfix's
// mailq, postsuper and postqueue do.
//
// Every change goes through the spool's locks (spool.Lock, then Move, Unlock
// or Delete), so it never races with delivery, whether the relay is running
// or not: a message a forwarder has claimed is reported busy and left alone,
// and a message the relay has not yet accepted (state New) is never touched.
// Listing reads envelopes without locks; what it shows may be out of date by
// the time it is printed, never torn. After a change, Notify tells a relay
// running on the spool to re-read it.
package queue

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// Message is one message as the queue commands show it.
type Message struct {
	ID string `json:"id"`
	// State is the spool state's name: new, ready, claimed, failed, held.
	State string `json:"state"`
	// Size is the content's size in bytes.
	Size    int64     `json:"size"`
	Arrival time.Time `json:"arrival,omitzero"`
	// Sender is the envelope sender without angle brackets, empty for <>.
	Sender     string      `json:"sender"`
	Recipients []Recipient `json:"recipients"`
	// Local are E-MailRelay's To-Local lines: mailbox names its address
	// verifier gave local recipients, kept for its local delivery and
	// never forwarded.
	Local []string `json:"local,omitempty"`
	// Attempts counts the failed attempts: relaykeeper's count, or the
	// X-MailRelay-Reason lines E-MailRelay appends at each failure, if
	// more.
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastReply   string    `json:"last_reply,omitempty"`
	Client      string    `json:"client,omitempty"`
	Helo        string    `json:"helo,omitempty"`
	Auth        string    `json:"auth,omitempty"`
	// StaleClaim: the message is claimed, but the forwarder that
	// claimed it died (nobody holds its lock); retry and flush take it.
	StaleClaim bool `json:"stale_claim,omitempty"`
	// Error says why the envelope could not be read (a torn or
	// hand-broken file); the other fields are then empty.
	Error string `json:"error,omitempty"`
}

// Recipient is one recipient and where its delivery stands.
type Recipient struct {
	Addr string `json:"addr"`
	// Status is pending, deferred, sent or failed.
	Status string `json:"status"`
	Reply  string `json:"reply,omitempty"`
}

// Filter selects messages in List. Text fields match case-insensitively
// anywhere in the value; empty fields and an empty States match everything.
type Filter struct {
	Sender    string
	Recipient string
	// Reply matches the message's last reply or any recipient's reply.
	Reply  string
	States []spool.State
}

func (f Filter) match(m *Message) bool {
	if len(f.States) > 0 && !hasState(f.States, m.State) {
		return false
	}
	if f.Sender != "" && !containsAddr(m.Sender, f.Sender) {
		return false
	}
	if f.Recipient != "" && !anyRecipient(m, func(r Recipient) bool { return containsAddr(r.Addr, f.Recipient) }) {
		return false
	}
	if f.Reply != "" && !contains(m.LastReply, f.Reply) &&
		!anyRecipient(m, func(r Recipient) bool { return contains(r.Reply, f.Reply) }) {
		return false
	}
	return true
}

// matchText reports whether text occurs in the sender, a recipient or a
// reply: what --match selects on.
func matchText(m *Message, text string) bool {
	return containsAddr(m.Sender, text) || contains(m.LastReply, text) ||
		anyRecipient(m, func(r Recipient) bool { return containsAddr(r.Addr, text) || contains(r.Reply, text) })
}

// containsAddr reports whether text occurs in the address as the listing
// prints it, in angle brackets: "<>" selects the null sender (the
// notices), "<alice@example.com>" that address and no longer one.
func containsAddr(addr, text string) bool {
	return contains(angle(addr), text)
}

func hasState(sts []spool.State, name string) bool {
	for _, st := range sts {
		if st.String() == name || st == journalPseudo && name == JournalState {
			return true
		}
	}
	return false
}

// journalPseudo stands for JournalState in a --state list: the listing
// prints it, so a script may select by it. No spool file has it.
const journalPseudo spool.State = -1

func anyRecipient(m *Message, f func(Recipient) bool) bool {
	for _, r := range m.Recipients {
		if f(r) {
			return true
		}
	}
	return false
}

func contains(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}

// List returns the messages in the spool that f selects, in arrival order.
// A message whose envelope cannot be read is listed with Error set (and
// matches only a filter on state); one that vanishes while being read (just
// delivered) is left out.
func List(s *spool.Spool, f Filter) ([]Message, error) {
	ents, err := s.List()
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	// A message with several envelope files (made by hand: relaykeeper
	// never makes two) is listed once, as damaged, naming them.
	envs := map[string][]string{}
	for _, e := range ents {
		envs[e.ID] = append(envs[e.ID], filepath.Base(s.EnvelopePath(e.ID, e.State)))
	}
	var out []Message
	for _, e := range ents {
		names := envs[e.ID]
		if names == nil {
			continue // listed already
		}
		delete(envs, e.ID)
		m, err := Get(s, e.ID)
		if errors.Is(err, spool.ErrNotFound) {
			continue
		}
		if len(names) > 1 {
			err = fmt.Errorf("several envelope files (%s): the relay quarantines the message at its next start; remove all but one to keep it",
				strings.Join(names, " "))
		}
		if err != nil {
			m = Message{ID: e.ID, State: e.State.String(), Error: err.Error()}
			if n, err := s.ContentSize(e.ID); err == nil {
				m.Size = n
			}
		}
		if f.match(&m) {
			out = append(out, m)
		}
	}
	return append(out, journalOnly(s, f)...), nil
}

// journalOnly lists, when no relay runs on the spool, what a relay that
// died holds only in its journal, in state "journal" (the files come at
// the next relay's start); with a relay running, its journal is its own.
func journalOnly(s *spool.Spool, f Filter) []Message {
	var out []Message
	for _, j := range journalled(s) {
		if m := journalView(j); f.match(&m) {
			out = append(out, m)
		}
	}
	return out
}

// journalled returns what journalOnly lists: nothing with a relay running.
func journalled(s *spool.Spool) []spool.Journalled {
	if pids, _, err := livePIDs(filepath.Join(s.Dir(), PIDFile)); err == nil && len(pids) > 0 {
		return nil
	}
	js, err := s.JournalOnly()
	if err != nil {
		return nil
	}
	return js
}

func journalView(j spool.Journalled) Message {
	m := view(j.Env, j.State)
	m.State, m.Size = JournalState, j.Size
	return m
}

// JournalState is the state "queue list" gives a message that only a dead
// relay's journal holds.
const JournalState = "journal"

// Get returns one message's envelope and state, read without locking.
func Get(s *spool.Spool, id string) (Message, error) {
	if !spool.ValidID(id) {
		return Message{}, spool.ErrNotFound
	}
	env, st, err := s.Read(id)
	if err != nil {
		return Message{}, err
	}
	m := view(env, st)
	m.StaleClaim = st == spool.Claimed && s.StaleClaim(id)
	n, err := s.ContentSize(id)
	switch {
	case err == nil:
		m.Size = n
		if n == 0 && st != spool.New {
			// Torn: never sent, set aside at the relay's next start.
			m.Error = fmt.Sprintf("content file %s is empty: not delivered; the relay quarantines the message at its next start, queue delete removes it",
				filepath.Base(s.ContentPath(id)))
		}
	case errors.Is(err, spool.ErrNotFound) && st != spool.New && st != spool.Claimed:
		// Content is written before the envelope and removed after
		// it, so an envelope without content is torn, unless the
		// whole message went meanwhile (delivered).
		if _, _, err := s.Read(id); err != nil {
			return Message{}, err
		}
		m.Error = fmt.Sprintf("content file %s is missing: queue delete removes the message, and the relay quarantines it at its next start",
			filepath.Base(s.ContentPath(id)))
	case !errors.Is(err, spool.ErrNotFound):
		m.Error = err.Error() // not a regular file, unreadable: never "0 bytes" and nothing said
	}
	return m, nil
}

func view(env *spool.Envelope, st spool.State) Message {
	m := Message{
		ID:          env.ID,
		State:       st.String(),
		Arrival:     env.Arrival,
		Sender:      env.From,
		Attempts:    max(env.Attempts, reasonCount(env.Reasons)),
		NextAttempt: env.NextAttempt,
		LastReply:   env.LastReply,
		Client:      env.Client,
		Helo:        env.Helo,
		Auth:        env.AuthID,
		Recipients:  make([]Recipient, 0, len(env.Recipients)),
	}
	for _, r := range env.Recipients {
		m.Recipients = append(m.Recipients, Recipient{Addr: r.Addr, Status: string(r.Status), Reply: r.Reply})
	}
	m.Local = slices.Clone(env.Local)
	if m.LastReply == "" {
		m.LastReply = lastReason(env.Reasons)
	}
	return m
}

// reasonCount counts the X-MailRelay-Reason lines: one for each attempt
// that failed, as E-MailRelay (and its resubmit script, which stops at 5)
// counts them.
func reasonCount(lines []string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, "X-MailRelay-Reason:") {
			n++
		}
	}
	return n
}

// lastReason is the text of the last X-MailRelay-Reason line: all that a
// message E-MailRelay failed (.bad) says of why, since it keeps no reply
// of relaykeeper's.
func lastReason(lines []string) string {
	for i := len(lines) - 1; i >= 0; i-- {
		if v, ok := strings.CutPrefix(lines[i], "X-MailRelay-Reason:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// maxHeader bounds what Header reads, so that a message without an empty
// line cannot make `queue show` read a whole large attachment.
const maxHeader = 1 << 20

// Header returns the message's header section, up to and without the empty
// line that ends it, with the content's line endings (CRLF).
func Header(s *spool.Spool, id string) ([]byte, error) {
	f, err := OpenContent(s, id)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out bytes.Buffer
	br := bufio.NewReader(io.LimitReader(f, maxHeader))
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimRight(line, "\r\n")) == 0 && (len(line) > 0 || err != nil) {
			return out.Bytes(), nil
		}
		out.Write(line)
		if err != nil {
			if err == io.EOF {
				return out.Bytes(), nil
			}
			return nil, fmt.Errorf("queue: read %s: %w", id, err)
		}
	}
}

// OpenContent opens a message's content for reading. The content never
// changes while the message lives, so no lock is needed; a message
// delivered meanwhile may vanish, which gives spool.ErrNotFound.
func OpenContent(s *spool.Spool, id string) (io.ReadCloser, error) {
	return s.OpenContent(id)
}
