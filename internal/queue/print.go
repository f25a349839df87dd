package queue

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/internal/termsafe"
)

// The queue commands' output: mailq-style text, or JSON.

// WriteJSON writes v, one of the forms below, as indented JSON.
func WriteJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Pace is a destination the running relay paces, as delivery reports it.
// Declared here, where it is printed, so that the queue need not import
// delivery.
type Pace interface {
	Describe(now time.Time) string
}

// Paces gives a list of paces of any type the listing's type.
func Paces[P Pace](ps []P) []Pace {
	out := make([]Pace, len(ps))
	for i, p := range ps {
		out[i] = p
	}
	return out
}

// Listing is what "queue list" shows.
type Listing struct {
	Spool    string    `json:"spool"`
	Messages []Message `json:"messages"`
	Requests int       `json:"requests"`
	Bytes    int64     `json:"bytes"`
	// Paces are the running relay's paced destinations.
	Paces []Pace `json:"paces,omitempty"`
}

// NewListing counts msgs, found in the spool directory dir.
func NewListing(dir string, msgs []Message, paces []Pace) Listing {
	if msgs == nil {
		msgs = []Message{}
	}
	l := Listing{Spool: dir, Messages: msgs, Requests: len(msgs), Paces: paces}
	for _, m := range msgs {
		l.Bytes += m.Size
	}
	return l
}

// IsZero says whether the filter lets every message through.
func (f Filter) IsZero() bool {
	return f.Sender == "" && f.Recipient == "" && f.Reply == "" && len(f.States) == 0
}

// WriteText prints the listing as mailq does: a line per message, then,
// indented, where its delivery stands and a line per recipient; then the
// totals and the paced destinations. filtered says whether f let only
// some messages through, which an empty listing then does not call an
// empty queue.
func (l Listing) WriteText(w io.Writer, now time.Time, filtered bool) {
	w = termsafe.Writer{W: w}
	defer l.writePaces(w, now)
	msgs := l.Messages
	if len(msgs) == 0 && !filtered {
		fmt.Fprintln(w, "Mail queue is empty")
		return
	}
	if len(msgs) > 0 {
		writeMessages(w, msgs, now)
	}
	req := "requests"
	if len(msgs) == 1 {
		req = "request"
	}
	fmt.Fprintf(w, "-- %d Kbytes in %d %s.\n", (l.Bytes+1023)/1024, len(msgs), req)
}

func (l Listing) writePaces(w io.Writer, now time.Time) {
	for i, p := range l.Paces {
		if i == 0 {
			fmt.Fprintln(w, "Paced destinations:")
		}
		fmt.Fprintf(w, "    %s\n", p.Describe(now))
	}
}

func writeMessages(w io.Writer, msgs []Message, now time.Time) {
	idw := len("ID")
	for _, m := range msgs {
		idw = max(idw, len(m.ID))
	}
	fmt.Fprintf(w, "%-*s  %8s  %-19s  %-7s  %s\n", idw, "ID", "SIZE", "ARRIVAL (UTC)", "STATE", "SENDER")
	for i, m := range msgs {
		if i > 0 {
			fmt.Fprintln(w)
		}
		arrival := "-"
		if !m.Arrival.IsZero() {
			arrival = m.Arrival.UTC().Format(TimeFormat)
		}
		if m.Error != "" && m.Recipients == nil {
			fmt.Fprintf(w, "%-*s  %8d  %-19s  %-7s  (envelope unreadable)\n", idw, m.ID, m.Size, arrival, m.State)
			fmt.Fprintf(w, "    %s\n", m.Error)
			continue
		}
		fmt.Fprintf(w, "%-*s  %8d  %-19s  %-7s  %s\n", idw, m.ID, m.Size, arrival, m.State, angle(m.Sender))
		if m.Error != "" {
			// Envelope read, content missing.
			fmt.Fprintf(w, "    damaged: %s\n", m.Error)
		}
		if s := m.Standing(now); s != "" {
			fmt.Fprintf(w, "    %s\n", s)
		}
		aw := 0
		for _, r := range m.Recipients {
			aw = max(aw, len(angle(r.Addr)))
		}
		for _, r := range m.Recipients {
			line := fmt.Sprintf("    %-8s  %-*s  %s", r.Status, aw, angle(r.Addr), r.Reply)
			fmt.Fprintln(w, strings.TrimRight(line, " "))
		}
	}
	fmt.Fprintln(w)
}

func angle(a string) string { return "<" + a + ">" }

// Shown is what "queue show" shows of one message.
type Shown struct {
	Message
	EnvelopeFile string `json:"envelope_file,omitempty"`
	ContentFile  string `json:"content_file"`
	// Served: the relay serves the message from its journal, and it
	// has no files yet (both file names are then empty).
	Served  bool    `json:"served,omitempty"`
	Header  string  `json:"header"`
	Content *string `json:"content,omitempty"`
}

// Files names a message's envelope and content files, or says it has
// none yet (served from the journal of the relay in this process).
func Files(s *spool.Spool, id, state string) (envelope, content string, served bool) {
	if s.Served(id) {
		return "", "", true
	}
	if st, ok := spool.ParseState(state); ok {
		envelope = s.EnvelopePath(id, st)
	}
	return envelope, s.ContentPath(id), false
}

// Show gathers message id's envelope, files and header, and with body
// its whole content. A missing message is spool.ErrNotFound, unless the
// quarantine or a dead relay's journal holds it (notInQueue says so).
func Show(s *spool.Spool, id string, body bool) (Shown, error) {
	var m Message
	// A message just accepted by a relay that serves it from memory
	// gets its files within a few seconds (lockYoung).
	err := waitYoung(id, func() (err error) {
		m, err = Get(s, id)
		return err
	})
	if errors.Is(err, spool.ErrNotFound) {
		if err := notInQueue(s, id); err != nil {
			return Shown{}, err
		}
	}
	if err != nil {
		return Shown{}, err
	}
	if m.Error != "" {
		return Shown{}, errors.New(m.Error)
	}
	hdr, err := Header(s, id)
	if err != nil {
		return Shown{}, err
	}
	out := Shown{Message: m, Header: string(hdr)}
	out.EnvelopeFile, out.ContentFile, out.Served = Files(s, id, m.State)
	if body {
		f, err := OpenContent(s, id)
		if err != nil {
			return Shown{}, err
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			return Shown{}, err
		}
		c := string(b)
		out.Content = &c
	}
	return out, nil
}

// WriteText prints the envelope field by field, then the header or the
// whole content with LF line endings, as a terminal wants them.
// What a terminal would take for controls is escaped (termsafe.Writer):
// the content file itself is the message as stored.
func (sh Shown) WriteText(w io.Writer) {
	m := sh.Message
	pw := termsafe.Writer{W: w}
	field := func(k, v string) { fmt.Fprintf(pw, "%-14s%s\n", k+":", v) }
	field("id", m.ID)
	field("state", m.State)
	field("size", fmt.Sprintf("%d bytes", m.Size))
	field("arrival", m.Arrival.UTC().Format(TimeFormat)+" UTC")
	field("sender", angle(m.Sender))
	field("client", m.Client)
	if m.Helo != "" {
		field("helo", m.Helo)
	}
	if m.Auth != "" {
		field("auth", m.Auth)
	}
	field("attempts", fmt.Sprint(m.Attempts))
	if !m.NextAttempt.IsZero() {
		field("next attempt", m.NextAttempt.UTC().Format(TimeFormat)+" UTC")
	}
	if m.LastReply != "" {
		field("last reply", m.LastReply)
	}
	for _, r := range m.Recipients {
		field("recipient", strings.TrimRight(fmt.Sprintf("%s %s %s", r.Status, angle(r.Addr), r.Reply), " "))
	}
	for _, l := range m.Local {
		field("to-local", l+" (E-MailRelay's local mailbox; not forwarded)")
	}
	if sh.Served {
		field("files", "none yet: served from the relay's journal")
	} else {
		field("envelope", sh.EnvelopeFile)
		field("content", sh.ContentFile)
	}
	fmt.Fprintln(pw)
	text := sh.Header
	if sh.Content != nil {
		text = *sh.Content
	}
	io.WriteString(pw, strings.ReplaceAll(text, "\r\n", "\n"))
}

// Changed is the JSON form of what a change did.
type Changed struct {
	Action  string      `json:"action"`
	Spool   string      `json:"spool"`
	Results []Result    `json:"results"`
	Relay   RelayNotice `json:"relay"`
}

// Changed is the report's JSON form, for act on the spool directory dir.
func (r Report) Changed(act Action, dir string) Changed {
	res := r.Results
	if res == nil {
		res = []Result{}
	}
	return Changed{Action: act.String(), Spool: dir, Results: res, Relay: r.Relay}
}

// WriteText prints a line per result (flush leaves out the messages that
// were due already), a summary, and whether the relay on the spool
// directory dir heard of it; a failure to tell it goes to warn.
func (r Report) WriteText(w, warn io.Writer, act Action, dir string) {
	for _, res := range r.Results {
		if act == Flush && res.Outcome == Unchanged {
			continue // every message already due: not worth a line each
		}
		fmt.Fprintln(w, res)
	}
	summary := fmt.Sprintf("%s: %d done", act, r.Done)
	if r.Unchanged > 0 {
		summary += fmt.Sprintf(", %d unchanged", r.Unchanged)
	}
	if r.Failed > 0 {
		summary += fmt.Sprintf(", %d not done", r.Failed)
	}
	fmt.Fprintln(w, summary+".")
	n := r.Relay
	switch {
	case !n.Asked:
	case n.Notified:
		fmt.Fprintf(w, "relay (pid %d) notified: it re-reads the spool now.\n", n.PID)
	case n.Error != "":
		fmt.Fprintf(warn, "relaykeeper queue: warning: relay not notified: %s\n", n.Error)
	case act == Delete || act == Hold:
		fmt.Fprintf(w, "no relay is running on %s.\n", dir)
	default:
		fmt.Fprintf(w, "no relay is running on %s; the messages go when it starts.\n", dir)
	}
}

// ParseStates reads --state's comma-separated list of state names.
func ParseStates(list string) ([]spool.State, error) {
	var sts []spool.State
	for _, s := range strings.Split(list, ",") {
		name := strings.TrimSpace(strings.ToLower(s))
		st, ok := spool.ParseState(name)
		if name == JournalState {
			st, ok = journalPseudo, true
		}
		if !ok {
			return nil, fmt.Errorf("--state %q: not a state (new, ready, claimed, failed, held, journal)", s)
		}
		sts = append(sts, st)
	}
	return sts, nil
}
