package main

import (
	"github.com/relaykeeper/relaykeeper/internal/queue"

	progressbar "github.com/relaykeeper/relaykeeper/internal/progress"
)

// progressMin is the fewest messages a queue change shows a progress bar
// for: fewer are done before a bar could be read.
const progressMin = 50

// changeWithProgress is queue.Change with a progress bar on a terminal
// when there are many messages.
func (q *queueCmd) changeWithProgress(act queue.Action, ids []string) queue.Report {
	if len(ids) < progressMin || !isTerminal(q.stderr) {
		return queue.Change(q.spool, act, ids)
	}
	bar := progressbar.New(progressbar.NewTerminal(q.stderr), act.String(), len(ids))
	defer bar.Finish()
	return queue.ChangeProgress(q.spool, act, ids, bar)
}
