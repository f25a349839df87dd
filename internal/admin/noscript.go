package admin

import (
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/queue"
)

// staticViewLimit is how many messages the page lists without JavaScript,
// as many as its script asks for.
const staticViewLimit = 500

// staticView is the dashboard's read-only part as the page itself carries
// it, inside <noscript>, for a browser without JavaScript (a text browser
// over ssh, a locked-down one): the queue, the bans, the blocked domains
// and the alerts, as of the page's loading. html/template escapes every
// value; nothing here is changed from the page.
type staticView struct {
	Time      string
	Messages  []staticMessage
	Total     int
	Truncated bool
	// Quarantined counts what recovery set aside, which the table does
	// not list.
	Quarantined int
	Error       string
	Bans        []staticRow // nil: no enforcement
	Blocks      []staticRow // nil: no enforcement
	Alerts      []staticRow
	Enforcing   bool
}

// staticMessage is one line of the queue's table.
type staticMessage struct {
	ID, State, Arrived, Sender, Recipients, LastReply string
	Attempts                                          int
}

// staticRow is a row of plain text cells.
type staticRow []string

func (s *Server) staticView() staticView {
	now := s.opts.Now().UTC()
	v := staticView{Time: now.Format("2006-01-02 15:04:05 UTC")}
	msgs, err := queue.List(s.opts.Spool, queue.Filter{})
	if err != nil {
		v.Error = err.Error()
	}
	v.Total = len(msgs)
	v.Quarantined, _ = s.opts.Spool.QuarantineCount()
	if len(msgs) > staticViewLimit {
		msgs, v.Truncated = msgs[:staticViewLimit], true
	}
	for _, m := range msgs {
		sm := staticMessage{ID: m.ID, State: m.State, Sender: "<" + m.Sender + ">", Attempts: m.Attempts, LastReply: m.LastReply}
		if m.StaleClaim {
			sm.State = "claimed, stuck"
		}
		if !m.Arrival.IsZero() {
			sm.Arrived = m.Arrival.UTC().Format("2006-01-02 15:04:05")
		}
		if m.Error != "" {
			sm.Sender, sm.LastReply = "", m.Error
		}
		var rcpts []string
		for _, r := range m.Recipients {
			rcpts = append(rcpts, r.Status+" <"+r.Addr+">")
		}
		sm.Recipients = strings.Join(rcpts, ", ")
		v.Messages = append(v.Messages, sm)
	}
	if s.opts.Bans != nil {
		v.Enforcing = true
		v.Bans = []staticRow{}
		for _, b := range s.opts.Bans.List() {
			reason := b.Reason
			if why := enforce.NotApplied(b, s.opts.Welcome); why != "" {
				reason = "[not applied: " + why + "] " + reason // as bans list says it
			}
			v.Bans = append(v.Bans, staticRow{b.Target(), stamp(b.From), stamp(b.Until), reason})
		}
	}
	if s.opts.Blocks != nil {
		v.Enforcing = true
		v.Blocks = []staticRow{}
		list, err := s.opts.Blocks.BlockedDomains()
		if err != nil {
			v.Blocks = append(v.Blocks, staticRow{"(" + err.Error() + ")", "", ""})
		}
		for _, b := range list {
			v.Blocks = append(v.Blocks, staticRow{b.Domain, b.Action, b.Reason})
		}
	}
	if s.opts.Live != nil {
		for _, a := range s.opts.Live.Alerts() {
			v.Alerts = append(v.Alerts, staticRow{stamp(a.Time), a.Cause, a.Text})
		}
	}
	return v
}

// stamp writes a time as the page's tables do, in UTC.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04:05")
}
