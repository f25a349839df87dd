package queue

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TimeFormat is how queue commands show times: UTC, as the mail log has
// them.
const TimeFormat = "2006-01-02 15:04:05"

// Standing says in words where a message's delivery stands at now: its
// state, its attempts, and the last reply.
func (m Message) Standing(now time.Time) string {
	var s string
	switch m.State {
	case "new":
		s = "being received or filtered; not accepted yet"
	case "claimed":
		s = "being delivered now"
		if m.StaleClaim {
			s = "claimed by a process that died: ready at the relay's next start, or now with queue retry " + m.ID
		}
	case "failed":
		s = "failed; kept until retried or deleted"
	case "held":
		s = "held; not delivered until released"
	case JournalState:
		s = "accepted, but only in the journal of a relay that died: written out and sent when a relay starts on this spool"
	case "ready":
		switch {
		case m.NextAttempt.After(now):
			s = "next attempt " + m.NextAttempt.UTC().Format(TimeFormat)
		case m.Attempts > 0:
			s = "due now"
		}
	}
	if m.Attempts > 0 {
		n := "attempts"
		if m.Attempts == 1 {
			n = "attempt"
		}
		s = fmt.Sprintf("%d %s; %s", m.Attempts, n, s)
	}
	if m.LastReply != "" {
		s += "; last reply: " + m.LastReply
	}
	return s
}

// String is the result in words: "ID: held (ready -> held)", "ID: busy:
// being delivered now; left alone".
func (r Result) String() string {
	switch {
	case r.Outcome == Done && r.To == "":
		return fmt.Sprintf("%s: %s (was %s)", r.ID, r.Detail, r.From)
	case r.Outcome == Done && r.To == r.From:
		return fmt.Sprintf("%s: %s", r.ID, r.Detail)
	case r.Outcome == Done:
		return fmt.Sprintf("%s: %s (%s -> %s)", r.ID, r.Detail, r.From, r.To)
	case r.Outcome == Unchanged:
		return fmt.Sprintf("%s: unchanged, %s", r.ID, r.Detail)
	}
	return fmt.Sprintf("%s: %s: %s", r.ID, r.Outcome, r.Detail)
}

// ReadIDs replaces "-" in args with the ids read from r, one per line (the
// first word of each; blank lines skipped), as postsuper -d - does. An id
// given twice (a listing of both of a message's files) counts once.
func ReadIDs(args []string, r io.Reader) ([]string, error) {
	var ids []string
	seen := map[string]bool{}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	read := false
	for _, a := range args {
		if a != "-" {
			add(a)
			continue
		}
		if read {
			continue // the standard input is read once
		}
		read = true
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if f := strings.Fields(sc.Text()); len(f) > 0 {
				add(f[0])
			}
		}
		if err := sc.Err(); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// RelayNotice says whether a relay running on the spool was told of a
// change.
type RelayNotice struct {
	// Asked: the change called for telling the relay.
	Asked    bool   `json:"-"`
	Notified bool   `json:"notified"`
	PID      int    `json:"pid,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Report is what Change did.
type Report struct {
	Results                 []Result
	Done, Unchanged, Failed int
	Relay                   RelayNotice
}

// Scope says how the ids of a change were chosen.
type Scope int

const (
	// Named ids were given by the user: one not found is an error.
	Named Scope = iota
	// Selected ids were chosen by Select (--all, --match, --state): one
	// gone by the time of the change was delivered or removed since, as
	// a cron job's "retry --all" races with delivery, and counts as
	// unchanged, not as a failure; so does one the relay took for
	// delivery since, for retry and flush.
	Selected
)

// Change applies act to the messages ids and tells the relay running on
// the spool when something changed, and for flush and retry whatever
// happened, since they ask for delivery now.
func Change(s *spool.Spool, act Action, ids []string, scope Scope) Report {
	return ChangeProgress(s, act, ids, scope, nil)
}

// Progress hears how many of a change's messages are done.
type Progress interface {
	Set(done int)
}

// ChangeProgress is Change telling p, if not nil, how far it has got: the
// messages are changed in a hundred slices.
func ChangeProgress(s *spool.Spool, act Action, ids []string, scope Scope, p Progress) Report {
	var rep Report
	if p == nil {
		rep.Results = Apply(s, act, ids)
	} else {
		step := max(len(ids)/100, 1)
		rep.Results = make([]Result, 0, len(ids))
		for i := 0; i < len(ids); i += step {
			rep.Results = append(rep.Results, Apply(s, act, ids[i:min(i+step, len(ids))])...)
			p.Set(len(rep.Results))
		}
	}
	for i, r := range rep.Results {
		switch {
		case scope == Selected && r.Outcome == NotFound:
			r.Outcome, r.Detail = Unchanged, "gone since it was selected (delivered or removed)"
			rep.Results[i] = r
		case scope == Selected && r.Outcome == Busy && (act == Retry || act == Flush):
			// The relay took it since it was selected: it is being
			// delivered, which is what retry and flush ask for.
			r.Outcome, r.Detail = Unchanged, "taken by the relay since it was selected; left alone"
			rep.Results[i] = r
		}
		switch {
		case r.Outcome == Done:
			rep.Done++
		case r.OK():
			rep.Unchanged++
		default:
			rep.Failed++
		}
	}
	rep.Relay.Asked = rep.Done > 0 || (act == Flush || act == Retry) && rep.Failed == 0
	if rep.Relay.Asked {
		pid, err := Notify(s)
		switch {
		case err == nil:
			rep.Relay.Notified, rep.Relay.PID = true, pid
		case !errors.Is(err, ErrNoRelay):
			rep.Relay.PID, rep.Relay.Error = pid, err.Error()
		}
	}
	return rep
}
