package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/queue"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// The queue subcommand's output: mailq-style text, or JSON with --json.

func (q *queueCmd) writeJSON(v any) {
	enc := json.NewEncoder(q.stdout)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// queueListing is the JSON form of "queue list".
type queueListing struct {
	Spool    string          `json:"spool"`
	Messages []queue.Message `json:"messages"`
	Requests int             `json:"requests"`
	Bytes    int64           `json:"bytes"`
	// Paces are the running relay's paced destinations.
	Paces []deliver.Pace `json:"paces,omitempty"`
}

func (q *queueCmd) list(f queue.Filter) int {
	msgs, err := queue.List(q.spool, f)
	if err != nil {
		fmt.Fprintf(q.stderr, "relaykeeper queue: %v\n", err)
		return exitFailure
	}
	var total int64
	for _, m := range msgs {
		total += m.Size
	}
	var paces []deliver.Pace
	if _, err = os.Stat(filepath.Join(q.spool.Dir(), queue.PIDFile)); err == nil {
		// Paces are the running relay's; a file a killed one left is stale.
		paces, err = deliver.ReadPaces(q.spool.Dir())
	} else {
		err = nil
	}
	if err != nil {
		fmt.Fprintf(q.stderr, "relaykeeper queue: warning: pace state unreadable: %v\n", err)
	}
	if q.json {
		if msgs == nil {
			msgs = []queue.Message{}
		}
		q.writeJSON(queueListing{Spool: q.spool.Dir(), Messages: msgs, Requests: len(msgs), Bytes: total, Paces: paces})
		return exitOK
	}
	defer writePaces(q.stdout, paces, q.now)
	if len(msgs) == 0 && f.Sender == "" && f.Recipient == "" && f.Reply == "" && len(f.States) == 0 {
		fmt.Fprintln(q.stdout, "Mail queue is empty")
		return exitOK
	}
	if len(msgs) > 0 {
		writeQueueList(q.stdout, msgs, q.now)
	}
	req := "requests"
	if len(msgs) == 1 {
		req = "request"
	}
	fmt.Fprintf(q.stdout, "-- %d Kbytes in %d %s.\n", (total+1023)/1024, len(msgs), req)
	return exitOK
}

// writePaces prints the destinations the running relay paces.
func writePaces(w io.Writer, paces []deliver.Pace, now time.Time) {
	for i, p := range paces {
		if i == 0 {
			fmt.Fprintln(w, "Paced destinations:")
		}
		fmt.Fprintf(w, "    %s\n", p.Describe(now))
	}
}

// writeQueueList prints messages as mailq does: a line per message, then,
// indented, where its delivery stands and a line per recipient.
func writeQueueList(w io.Writer, msgs []queue.Message, now time.Time) {
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
			arrival = m.Arrival.UTC().Format(queue.TimeFormat)
		}
		if m.Error != "" {
			fmt.Fprintf(w, "%-*s  %8d  %-19s  %-7s  (envelope unreadable)\n", idw, m.ID, m.Size, arrival, m.State)
			fmt.Fprintf(w, "    %s\n", m.Error)
			continue
		}
		fmt.Fprintf(w, "%-*s  %8d  %-19s  %-7s  %s\n", idw, m.ID, m.Size, arrival, m.State, addr(m.Sender))
		if s := m.Standing(now); s != "" {
			fmt.Fprintf(w, "    %s\n", s)
		}
		aw := 0
		for _, r := range m.Recipients {
			aw = max(aw, len(addr(r.Addr)))
		}
		for _, r := range m.Recipients {
			line := fmt.Sprintf("    %-8s  %-*s  %s", r.Status, aw, addr(r.Addr), r.Reply)
			fmt.Fprintln(w, strings.TrimRight(line, " "))
		}
	}
	fmt.Fprintln(w)
}

func addr(a string) string { return "<" + a + ">" }

// queueShown is the JSON form of "queue show".
type queueShown struct {
	queue.Message
	EnvelopeFile string  `json:"envelope_file,omitempty"`
	ContentFile  string  `json:"content_file"`
	Header       string  `json:"header"`
	Content      *string `json:"content,omitempty"`
}

func (q *queueCmd) show(id string, body bool) int {
	m, err := queue.Get(q.spool, id)
	if err != nil {
		return q.notFound(id, err)
	}
	hdr, err := queue.Header(q.spool, id)
	if err != nil {
		return q.notFound(id, err)
	}
	out := queueShown{Message: m, ContentFile: q.spool.ContentPath(id), Header: string(hdr)}
	if st, ok := spool.ParseState(m.State); ok {
		out.EnvelopeFile = q.spool.EnvelopePath(id, st)
	}
	if body {
		f, err := queue.OpenContent(q.spool, id)
		if err != nil {
			return q.notFound(id, err)
		}
		b, err := io.ReadAll(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(q.stderr, "relaykeeper queue: %s: %v\n", id, err)
			return exitFailure
		}
		s := string(b)
		out.Content = &s
	}
	if q.json {
		q.writeJSON(out)
		return exitOK
	}
	w := q.stdout
	field := func(k, v string) { fmt.Fprintf(w, "%-14s%s\n", k+":", v) }
	field("id", m.ID)
	field("state", m.State)
	field("size", fmt.Sprintf("%d bytes", m.Size))
	field("arrival", m.Arrival.UTC().Format(queue.TimeFormat)+" UTC")
	field("sender", addr(m.Sender))
	field("client", m.Client)
	if m.Helo != "" {
		field("helo", m.Helo)
	}
	if m.Auth != "" {
		field("auth", m.Auth)
	}
	field("attempts", fmt.Sprint(m.Attempts))
	if !m.NextAttempt.IsZero() {
		field("next attempt", m.NextAttempt.UTC().Format(queue.TimeFormat)+" UTC")
	}
	if m.LastReply != "" {
		field("last reply", m.LastReply)
	}
	for _, r := range m.Recipients {
		field("recipient", strings.TrimRight(fmt.Sprintf("%s %s %s", r.Status, addr(r.Addr), r.Reply), " "))
	}
	field("envelope", out.EnvelopeFile)
	field("content", out.ContentFile)
	fmt.Fprintln(w)
	// The content has CRLF line endings; a terminal wants LF.
	text := out.Header
	if out.Content != nil {
		text = *out.Content
	}
	io.WriteString(w, strings.ReplaceAll(text, "\r\n", "\n"))
	return exitOK
}

func (q *queueCmd) notFound(id string, err error) int {
	if errors.Is(err, spool.ErrNotFound) {
		fmt.Fprintf(q.stderr, "relaykeeper queue: %s: no such message\n", id)
	} else {
		fmt.Fprintf(q.stderr, "relaykeeper queue: %s: %v\n", id, err)
	}
	return exitFailure
}

// queueChanged is the JSON form of the changing commands' output.
type queueChanged struct {
	Action  string            `json:"action"`
	Spool   string            `json:"spool"`
	Results []queue.Result    `json:"results"`
	Relay   queue.RelayNotice `json:"relay"`
}

func (q *queueCmd) change(act queue.Action, ids []string) int {
	rep := q.changeWithProgress(act, ids)
	if q.json {
		res := rep.Results
		if res == nil {
			res = []queue.Result{}
		}
		q.writeJSON(queueChanged{Action: act.String(), Spool: q.spool.Dir(), Results: res, Relay: rep.Relay})
	} else {
		w := q.stdout
		for _, r := range rep.Results {
			if act == queue.Flush && r.Outcome == queue.Unchanged {
				continue // every message already due: not worth a line each
			}
			fmt.Fprintln(w, r)
		}
		summary := fmt.Sprintf("%s: %d done", act, rep.Done)
		if rep.Unchanged > 0 {
			summary += fmt.Sprintf(", %d unchanged", rep.Unchanged)
		}
		if rep.Failed > 0 {
			summary += fmt.Sprintf(", %d not done", rep.Failed)
		}
		fmt.Fprintln(w, summary+".")
		if n := rep.Relay; n.Asked {
			switch {
			case n.Notified:
				fmt.Fprintf(w, "relay (pid %d) notified: it re-reads the spool now.\n", n.PID)
			case n.Error != "":
				fmt.Fprintf(q.stderr, "relaykeeper queue: warning: relay not notified: %s\n", n.Error)
			case act == queue.Delete || act == queue.Hold:
				fmt.Fprintf(w, "no relay is running on %s.\n", q.spool.Dir())
			default:
				fmt.Fprintf(w, "no relay is running on %s; the messages go when it starts.\n", q.spool.Dir())
			}
		}
	}
	if rep.Failed > 0 {
		fmt.Fprintf(q.stderr, "relaykeeper queue: %s: %d of %d messages not done\n", act, rep.Failed, len(rep.Results))
		return exitFailure
	}
	return exitOK
}
