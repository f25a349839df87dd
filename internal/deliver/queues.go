package deliver

import (
	"slices"

	"github.com/relaykeeper/relaykeeper/internal/route"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// Ready queues, after Postfix's queue manager and KumoMTA's ready queues:
// due messages wait in one queue per destination (the key of their first
// leg), and the dispatcher serves the queues round-robin, handing a worker
// a batch of one destination's messages, which it carries over one session
// before it gives the destination back. A destination never has more
// batches under way than its concurrency limit (its route's, its pace's, its
// slow-start window), so a busy destination waits in its queue instead of
// costing a claim and a rewrite per message, and one destination with many
// messages cannot starve the others.
//
// A message with recipients for several destinations waits in its first
// leg's queue; the worker that takes it plans every leg (legs.go) and opens
// or borrows a session for each.

// destQueue is one destination's due messages, oldest first.
type destQueue struct {
	dst     route.Destination
	ids     []string
	running int  // batches under way
	ringed  bool // in readyQueues.ring
}

// readyQueues are the dispatcher's due messages by destination. It is
// owned by the dispatcher goroutine.
type readyQueues struct {
	queues map[string]*destQueue
	// ring holds the queues with messages, in the order they are served;
	// a queue at its limit leaves it until one of its batches ends.
	ring []*destQueue
	n    int // messages queued
}

func newReadyQueues() *readyQueues {
	return &readyQueues{queues: map[string]*destQueue{}}
}

// push queues id for dst, behind the messages already there.
func (r *readyQueues) push(id string, dst route.Destination) {
	q := r.queues[dst.Key]
	if q == nil {
		q = &destQueue{}
		r.queues[dst.Key] = q
	}
	q.dst = dst // the latest route: tables may have been reloaded
	q.ids = append(q.ids, id)
	r.n++
	if !q.ringed {
		q.ringed = true
		r.ring = append(r.ring, q)
	}
}

// take hands out the next batch round-robin: up to size(queued, free)
// messages of the first queue in the ring below its limit. free is how
// many more batches the destination may have under way.
func (r *readyQueues) take(limit func(route.Destination) int, size func(queued, free int) int) (key string, ids []string, ok bool) {
	for range len(r.ring) {
		q := r.ring[0]
		r.ring[0] = nil
		r.ring = r.ring[1:]
		q.ringed = false
		if len(q.ids) == 0 {
			r.drop(q)
			continue
		}
		lim := limit(q.dst)
		if q.running >= lim {
			continue // back in the ring when a batch of it ends
		}
		k := min(max(size(len(q.ids), lim-q.running), 1), len(q.ids))
		ids = slices.Clone(q.ids[:k])
		q.ids = q.ids[k:]
		r.n -= k
		q.running++
		if len(q.ids) > 0 {
			q.ringed = true
			r.ring = append(r.ring, q)
		}
		return q.dst.Key, ids, true
	}
	return "", nil, false
}

// finished ends a batch of key's; back is what it did not get to, which
// goes back at the head of the queue.
func (r *readyQueues) finished(key string, back []string) {
	q := r.queues[key]
	if q == nil {
		return
	}
	if q.running > 0 {
		q.running--
	}
	if len(back) > 0 {
		q.ids = append(slices.Clone(back), q.ids...)
		r.n += len(back)
	}
	if len(q.ids) > 0 && !q.ringed {
		q.ringed = true
		r.ring = append(r.ring, q)
	}
	r.drop(q)
}

// drop forgets a queue with nothing queued, nothing under way and no place
// in the ring.
func (r *readyQueues) drop(q *destQueue) {
	if q.running <= 0 && len(q.ids) == 0 && !q.ringed {
		delete(r.queues, q.dst.Key)
	}
}

// clear empties every queue; batches under way still end with finished.
func (r *readyQueues) clear() {
	for _, q := range r.queues {
		q.ids, q.ringed = nil, false
		r.drop(q)
	}
	clear(r.ring)
	r.ring = r.ring[:0]
	r.n = 0
}

// each calls f with every queued message.
func (r *readyQueues) each(f func(id string)) {
	for _, q := range r.queues {
		for _, id := range q.ids {
			f(id)
		}
	}
}

// destinationOf is the destination whose queue env waits in: its first
// leg's. A message with no pending recipient (a failed one renamed back to
// Ready) goes with all of them, as deliverOne will try them all again.
func (s *Scheduler) destinationOf(env *spool.Envelope) route.Destination {
	pending := env.Pending()
	if len(pending) == 0 {
		for _, r := range env.Recipients {
			pending = append(pending, r.Addr)
		}
	}
	if legs := s.plan(env, pending); len(legs) > 0 {
		return legs[0].dst
	}
	return route.Destination{Key: s.opts.Upstream}
}

// queueLimit is how many batches a destination may have under way: its
// concurrency limit, one while a rate delay is kept, or its slow-start
// window. Sessions are counted again when opened (workerConn.get), since
// parked sessions and other legs of a message hold slots too.
func (s *Scheduler) queueLimit(dst route.Destination) int {
	limit := dst.ConcurrencyLimit
	if limit <= 0 {
		limit = s.opts.DestinationConcurrency
	}
	limit, delay := s.paced(dst.Key, limit, dst.RateDelay)
	if delay > 0 {
		limit = 1 // Postfix: a rate delay implies one session at a time
	}
	return s.window(dst, limit)
}

// batchSize is how many of a destination's queued messages one worker
// takes: all of them (up to MessagesPerConnection) when there are more
// destinations waiting than workers free, else an even share over the
// sessions the destination may still open, so that a few messages to one
// destination still go in parallel.
func (s *Scheduler) batchSize(queued, free, idleWorkers, destinations int) int {
	share := max(1, idleWorkers/max(1, destinations))
	slots := max(1, min(free, share))
	return min((queued+slots-1)/slots, s.opts.MessagesPerConnection)
}
