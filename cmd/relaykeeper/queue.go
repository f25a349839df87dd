package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/deliver"
	progressbar "github.com/relaykeeper/relaykeeper/internal/progress"
	"github.com/relaykeeper/relaykeeper/internal/queue"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// queueCmd is one run of "relaykeeper queue".
type queueCmd struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	now            time.Time
	spool          *spool.Spool
	json           bool
	scope          queue.Scope // how the ids were chosen
}

// runQueue is "relaykeeper queue": it lists or changes the spool's messages
// and returns the exit status.
func runQueue(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relaykeeper queue", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	spoolDir := fs.String("spool-dir", "", "")
	fs.StringVar(spoolDir, "s", "", "") // as its --help and the daemon's -s say
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
	pos, err := config.ParseInterleaved(fs, args)
	if err != nil {
		return usage("%v", err)
	}
	if *help || len(pos) > 0 && pos[0] == "help" {
		io.WriteString(stdout, config.QueueUsage)
		return exitOK
	}
	name := "list"
	if len(pos) > 0 {
		name, pos = pos[0], pos[1:]
	}
	allowed, ok := queue.Commands[name]
	if !ok {
		return usage("unknown command %q%s%s", name, queue.UnknownHint(name), config.DidYouMean(name, queue.CommandNames()))
	}
	var wrong string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "spool-dir", "s", "config", "json", "help", "h":
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
		if f.States, err = queue.ParseStates(*state); err != nil {
			return usage("%v", err)
		}
	}
	if err := queue.CheckOperands(queue.Operands{Command: name, IDs: pos, All: *all, Match: *match, State: *state}); err != nil {
		return usage("%v", err)
	}

	dir, err := config.SpoolDir(*spoolDir, *configFile)
	if err != nil {
		fmt.Fprintln(stderr, config.ErrorLine("relaykeeper queue", err))
		return exitUsage
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs // the output names it; a relative name says little
	}
	if err := spool.CheckDir(dir); err != nil {
		return usage("%v", err)
	}
	sp, err := spool.Open(dir, nil)
	if err != nil {
		fmt.Fprintln(stderr, config.ErrorLine("relaykeeper queue", err))
		return exitFailure
	}
	q := &queueCmd{stdin: stdin, stdout: stdout, stderr: stderr, now: time.Now(), spool: sp, json: *asJSON}

	switch name {
	case "list":
		return q.list(f)
	case "show":
		return q.show(pos[0], *body)
	case "quarantine":
		if err := queue.WriteQuarantine(sp, stdout, *asJSON); err != nil {
			fmt.Fprintln(stderr, config.ErrorLine("relaykeeper queue", err))
			return exitFailure
		}
		return exitOK
	}
	act, _ := queue.ParseAction(name)
	var ids []string
	switch {
	case act == queue.Flush || *all || *match != "" || f.States != nil:
		q.scope = queue.Selected
		if ids, err = queue.Select(sp, act, queue.Selector{All: *all || act == queue.Flush, Match: *match, States: f.States}); err != nil {
			fmt.Fprintln(stderr, config.ErrorLine("relaykeeper queue", err))
			return exitFailure
		}
	case len(pos) == 0 && isTerminal(stdin):
		return usage("queue %s: which messages? give ids, - (read them from the standard input), --all or --match", name)
	case len(pos) == 0:
		pos = []string{"-"}
		fallthrough
	default:
		if ids, err = queue.ReadIDs(pos, stdin); err != nil {
			fmt.Fprintf(stderr, "relaykeeper queue: reading ids: %v\n", err)
			return exitFailure
		}
	}
	return q.change(act, ids)
}

func (q *queueCmd) list(f queue.Filter) int {
	msgs, err := queue.List(q.spool, f)
	if err != nil {
		fmt.Fprintln(q.stderr, config.ErrorLine("relaykeeper queue", err))
		return exitFailure
	}
	paces, err := deliver.RunningPaces(q.spool.Dir(), queue.PIDFile)
	if err != nil {
		fmt.Fprintf(q.stderr, "relaykeeper queue: warning: pace state unreadable: %v\n", err)
	}
	l := queue.NewListing(q.spool.Dir(), msgs, queue.Paces(paces))
	if q.json {
		queue.WriteJSON(q.stdout, l)
	} else {
		l.WriteText(q.stdout, q.now, !f.IsZero())
	}
	return exitOK
}

func (q *queueCmd) show(id string, body bool) int {
	sh, err := queue.Show(q.spool, id, body)
	switch {
	case errors.Is(err, spool.ErrNotFound):
		fmt.Fprintf(q.stderr, "relaykeeper queue: %s: no such message\n", id)
		return exitFailure
	case err != nil:
		fmt.Fprintf(q.stderr, "relaykeeper queue: %s: %v\n", id, err)
		return exitFailure
	case q.json:
		queue.WriteJSON(q.stdout, sh)
	default:
		sh.WriteText(q.stdout)
	}
	return exitOK
}

func (q *queueCmd) change(act queue.Action, ids []string) int {
	rep := q.changeWithProgress(act, ids)
	if q.json {
		queue.WriteJSON(q.stdout, rep.Changed(act, q.spool.Dir()))
	} else {
		rep.WriteText(q.stdout, q.stderr, act, q.spool.Dir())
	}
	if rep.Failed > 0 {
		fmt.Fprintf(q.stderr, "relaykeeper queue: %s: %d of %d messages not done\n", act, rep.Failed, len(rep.Results))
		return exitFailure
	}
	return exitOK
}

// progressMin is the fewest messages a queue change shows a progress bar
// for: fewer are done before a bar could be read.
const progressMin = 50

// changeWithProgress is queue.Change with a progress bar on a terminal
// when there are many messages.
func (q *queueCmd) changeWithProgress(act queue.Action, ids []string) queue.Report {
	if len(ids) < progressMin || !isTerminal(q.stderr) {
		return queue.Change(q.spool, act, ids, q.scope)
	}
	bar := progressbar.New(progressbar.NewTerminal(q.stderr), act.String(), len(ids))
	defer bar.Finish()
	return queue.ChangeProgress(q.spool, act, ids, q.scope, bar)
}
