package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/queue"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

const queueUsage = `usage: relaykeeper queue [COMMAND] [SWITCHES] [ARGS]

Lists and changes the messages in the spool, whether a relay is running on it
or not (see docs/queue.md).

  list                   the messages, like mailq (the default command)
      --sender TEXT      only those whose sender contains TEXT
      --recipient TEXT   only those with a recipient containing TEXT
      --reply TEXT       only those with a last reply containing TEXT
      --state STATE      only those in STATE: new, ready, claimed, failed,
                         held (several separated by commas)
  show ID [--body]       one message's envelope and header (--body: all)
  delete ID...           remove messages for good
  hold ID...             keep ready messages from delivery
  release ID...          make held messages ready, due at once
  retry ID...            make ready and failed messages due at once
  flush                  make every ready message due at once

delete, hold, release and retry take ids, or "-" to read ids from the
standard input one per line (also when no ids are given and the standard
input is not a terminal), or --all, or --match TEXT (the messages whose
sender, a recipient or a reply contains TEXT). A message a delivery has
claimed is reported busy and left alone.

Every command:
      --spool-dir DIR    the spool (default: from --config, else
                         /var/spool/relaykeeper)
      --config FILE      read the spool directory from this file
      --json             machine-readable output

After a change, a relay running on the spool is sent SIGHUP so that it
re-reads the envelopes. Exit status: 0 done, 1 some messages could not be
changed (not found, busy), 2 a wrong command line.
`

// queueCommands are the queue subcommands and the switches each takes
// besides the common ones.
var queueCommands = map[string][]string{
	"list":    {"sender", "recipient", "reply", "state"},
	"show":    {"body"},
	"delete":  {"all", "match"},
	"hold":    {"all", "match"},
	"release": {"all", "match"},
	"retry":   {"all", "match"},
	"flush":   nil,
}

var queueActions = map[string]queue.Action{
	"delete": queue.Delete, "hold": queue.Hold, "release": queue.Release,
	"retry": queue.Retry, "flush": queue.Flush,
}

// queueCmd is one run of "relaykeeper queue".
type queueCmd struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            time.Time
	spool          *spool.Spool
	json           bool
}

// runQueue is "relaykeeper queue": it lists or changes the spool's messages
// and returns the exit status.
func runQueue(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relaykeeper queue", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	spoolDir := fs.String("spool-dir", "", "")
	configFile := fs.String("config", "", "")
	asJSON := fs.Bool("json", false, "")
	sender := fs.String("sender", "", "")
	recipient := fs.String("recipient", "", "")
	reply := fs.String("reply", "", "")
	state := fs.String("state", "", "")
	body := fs.Bool("body", false, "")
	all := fs.Bool("all", false, "")
	match := fs.String("match", "", "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")

	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "relaykeeper queue: %s (see relaykeeper queue --help)\n", fmt.Sprintf(format, a...))
		return exitUsage
	}
	pos, err := parseInterleaved(fs, args)
	if err != nil {
		return usage("%v", err)
	}
	if *help || len(pos) > 0 && pos[0] == "help" {
		io.WriteString(stdout, queueUsage)
		return exitOK
	}
	name := "list"
	if len(pos) > 0 {
		name, pos = pos[0], pos[1:]
	}
	allowed, ok := queueCommands[name]
	if !ok {
		return usage("unknown command %q", name)
	}
	var wrong string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "spool-dir", "config", "json", "help", "h":
		default:
			if wrong == "" && !slices.Contains(allowed, f.Name) {
				wrong = f.Name
			}
		}
	})
	if wrong != "" {
		return usage("queue %s does not take --%s", name, wrong)
	}

	var f queue.Filter
	f.Sender, f.Recipient, f.Reply = *sender, *recipient, *reply
	if *state != "" {
		for _, s := range strings.Split(*state, ",") {
			st, ok := spool.ParseState(strings.TrimSpace(strings.ToLower(s)))
			if !ok {
				return usage("--state %q: not a state (new, ready, claimed, failed, held)", s)
			}
			f.States = append(f.States, st)
		}
	}
	switch {
	case name == "list" && len(pos) > 0:
		return usage("unexpected argument %q", pos[0])
	case name == "show" && len(pos) != 1:
		return usage("queue show takes one message id")
	case name == "flush" && len(pos) > 0:
		return usage("queue flush takes no arguments (queue retry ID makes one message due)")
	case *all && *match != "":
		return usage("--all and --match exclude each other")
	case (*all || *match != "") && len(pos) > 0:
		return usage("give message ids or --all or --match, not both")
	}
	for _, id := range pos {
		if id != "-" && !spool.ValidID(id) {
			return usage("%q is not a message id", id)
		}
	}

	dir := config.Default().Spool.Dir
	if *configFile != "" {
		cfg, err := config.Load(*configFile)
		if err != nil {
			fmt.Fprintf(stderr, "relaykeeper queue: %v\n", err)
			return exitUsage
		}
		dir = cfg.Spool.Dir
	}
	if *spoolDir != "" {
		dir = *spoolDir
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // the output names it; a relative name says little
	}
	// spool.Open creates a missing directory: a mistyped --spool-dir
	// must not make an empty spool and report it empty.
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		if err == nil {
			err = errors.New("not a directory")
		}
		return usage("spool directory %s: %v", dir, unwrapPath(err))
	}
	sp, err := spool.Open(dir, nil)
	if err != nil {
		fmt.Fprintf(stderr, "relaykeeper queue: %v\n", err)
		return exitFailure
	}
	q := &queueCmd{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now(), spool: sp, json: *asJSON}

	switch name {
	case "list":
		return q.list(f)
	case "show":
		return q.show(pos[0], *body)
	}
	act := queueActions[name]
	var ids []string
	switch {
	case act == queue.Flush || *all || *match != "":
		if ids, err = queue.Select(sp, act, queue.Selector{All: *all || act == queue.Flush, Match: *match}); err != nil {
			fmt.Fprintf(stderr, "relaykeeper queue: %v\n", err)
			return exitFailure
		}
	case len(pos) == 0 && isTerminal(stdin):
		return usage("queue %s: which messages? give ids, - (read them from the standard input), --all or --match", name)
	case len(pos) == 0:
		pos = []string{"-"}
		fallthrough
	default:
		if ids, err = expandIDs(pos, stdin); err != nil {
			fmt.Fprintf(stderr, "relaykeeper queue: reading ids: %v\n", err)
			return exitFailure
		}
	}
	return q.change(act, ids)
}

// parseInterleaved parses switches wherever they are among the arguments
// ("queue show ID --body"), and returns the other arguments in order. After
// "--" everything is an argument.
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, config.FlagError(err)
		}
		rest := fs.Args()
		if n := len(args) - len(rest); n > 0 && args[n-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// unwrapPath drops the path from an *os.PathError, which the caller names.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// expandIDs replaces "-" with the ids read from r, one per line (the first
// word of each; blank lines skipped), as postsuper -d - does. An id given
// twice (a listing of both of a message's files) counts once.
func expandIDs(args []string, r io.Reader) ([]string, error) {
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
	if q.json {
		if msgs == nil {
			msgs = []queue.Message{}
		}
		q.writeJSON(queueListing{Spool: q.spool.Dir(), Messages: msgs, Requests: len(msgs), Bytes: total})
		return exitOK
	}
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

// timeFormat is how queue commands show times: UTC, as the mail log has them.
const timeFormat = "2006-01-02 15:04:05"

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
			arrival = m.Arrival.UTC().Format(timeFormat)
		}
		if m.Error != "" {
			fmt.Fprintf(w, "%-*s  %8d  %-19s  %-7s  (envelope unreadable)\n", idw, m.ID, m.Size, arrival, m.State)
			fmt.Fprintf(w, "    %s\n", m.Error)
			continue
		}
		fmt.Fprintf(w, "%-*s  %8d  %-19s  %-7s  %s\n", idw, m.ID, m.Size, arrival, m.State, addr(m.Sender))
		if s := standing(m, now); s != "" {
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

// standing says in words where a message's delivery stands.
func standing(m queue.Message, now time.Time) string {
	var s string
	switch m.State {
	case "new":
		s = "being received or filtered; not accepted yet"
	case "claimed":
		s = "being delivered now"
	case "failed":
		s = "failed; kept until retried or deleted"
	case "held":
		s = "held; not delivered until released"
	case "ready":
		switch {
		case m.NextAttempt.After(now):
			s = "next attempt " + m.NextAttempt.UTC().Format(timeFormat)
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
	field("arrival", m.Arrival.UTC().Format(timeFormat)+" UTC")
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
		field("next attempt", m.NextAttempt.UTC().Format(timeFormat)+" UTC")
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
	Action  string         `json:"action"`
	Spool   string         `json:"spool"`
	Results []queue.Result `json:"results"`
	Relay   relayNotice    `json:"relay"`
}

// relayNotice says whether a relay running on the spool was told.
type relayNotice struct {
	Notified bool   `json:"notified"`
	PID      int    `json:"pid,omitempty"`
	Error    string `json:"error,omitempty"`
}

func (q *queueCmd) change(act queue.Action, ids []string) int {
	res := q.apply(act, ids)
	var done, unchanged, failed int
	for _, r := range res {
		switch {
		case r.Outcome == queue.Done:
			done++
		case r.OK():
			unchanged++
		default:
			failed++
		}
	}
	// Tell the relay when something changed, and for flush and retry
	// whatever happened: they ask for delivery now.
	var notice relayNotice
	notify := done > 0 || (act == queue.Flush || act == queue.Retry) && failed == 0
	if notify {
		pid, err := queue.Notify(q.spool)
		switch {
		case err == nil:
			notice = relayNotice{Notified: true, PID: pid}
		case !errors.Is(err, queue.ErrNoRelay):
			notice = relayNotice{PID: pid, Error: err.Error()}
		}
	}

	if q.json {
		if res == nil {
			res = []queue.Result{}
		}
		q.writeJSON(queueChanged{Action: act.String(), Spool: q.spool.Dir(), Results: res, Relay: notice})
	} else {
		w := q.stdout
		for _, r := range res {
			if act == queue.Flush && r.Outcome == queue.Unchanged {
				continue // every message already due: not worth a line each
			}
			fmt.Fprintln(w, resultLine(r))
		}
		summary := fmt.Sprintf("%s: %d done", act, done)
		if unchanged > 0 {
			summary += fmt.Sprintf(", %d unchanged", unchanged)
		}
		if failed > 0 {
			summary += fmt.Sprintf(", %d not done", failed)
		}
		fmt.Fprintln(w, summary+".")
		if notify {
			switch {
			case notice.Notified:
				fmt.Fprintf(w, "relay (pid %d) notified: it re-reads the spool now.\n", notice.PID)
			case notice.Error != "":
				fmt.Fprintf(q.stderr, "relaykeeper queue: warning: relay not notified: %s\n", notice.Error)
			case act == queue.Delete || act == queue.Hold:
				fmt.Fprintf(w, "no relay is running on %s.\n", q.spool.Dir())
			default:
				fmt.Fprintf(w, "no relay is running on %s; the messages go when it starts.\n", q.spool.Dir())
			}
		}
	}
	if failed > 0 {
		fmt.Fprintf(q.stderr, "relaykeeper queue: %s: %d of %d messages not done\n", act, failed, len(res))
		return exitFailure
	}
	return exitOK
}

// resultLine is one message's result in words: "ID: held (ready -> held)",
// "ID: busy: being delivered now; left alone".
func resultLine(r queue.Result) string {
	switch {
	case r.Outcome == queue.Done && r.To == "":
		return fmt.Sprintf("%s: %s (was %s)", r.ID, r.Detail, r.From)
	case r.Outcome == queue.Done && r.To == r.From:
		return fmt.Sprintf("%s: %s", r.ID, r.Detail)
	case r.Outcome == queue.Done:
		return fmt.Sprintf("%s: %s (%s -> %s)", r.ID, r.Detail, r.From, r.To)
	case r.Outcome == queue.Unchanged:
		return fmt.Sprintf("%s: unchanged, %s", r.ID, r.Detail)
	}
	return fmt.Sprintf("%s: %s: %s", r.ID, r.Outcome, r.Detail)
}
