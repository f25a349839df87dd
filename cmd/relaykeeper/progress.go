package main

import (
	"github.com/relaykeeper/relaykeeper/internal/queue"

	progressbar "github.com/relaykeeper/relaykeeper/internal/progress"
)

// progressMin is the fewest messages a queue change shows a progress bar
// for: fewer are done before a bar could be read.
const progressMin = 50

// apply is queue.Apply, in slices, with a progress bar on a terminal when
// there are many messages.
func (q *queueCmd) apply(act queue.Action, ids []string) []queue.Result {
	if len(ids) < progressMin || !isTerminal(q.stderr) {
		return queue.Apply(q.spool, act, ids)
	}
	bar := progressbar.New(q.stderr, act.String(), len(ids))
	step := max(len(ids)/100, 1)
	res := make([]queue.Result, 0, len(ids))
	for i := 0; i < len(ids); i += step {
		res = append(res, queue.Apply(q.spool, act, ids[i:min(i+step, len(ids))])...)
		bar.Set(len(res))
	}
	bar.Finish()
	return res
}
