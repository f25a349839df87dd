package main

import (
	"fmt"
	"net"
	"os"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/bounce"
	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// notify queues a delivery status notification for the scheduler: from the
// null sender to the message's sender, through the same queue as any other
// message. Never for a message from <> or for a notice itself, so a notice
// can never cause another (bounce.Needed).
func (r *relay) notify(kind deliver.Notice, env *spool.Envelope, contentPath string, rcpts []spool.Recipient) error {
	if !r.cfg.Delivery.Bounces {
		return nil
	}
	k := bounce.Failure
	switch kind {
	case deliver.NoticeDelay:
		k = bounce.Delay
	case deliver.NoticeSuccess:
		k = bounce.Success
	}
	if !bounce.Needed(env, k) {
		return nil
	}
	// Only the recipients whose NOTIFY asks for this kind of notice.
	allowed := map[string]bool{}
	for _, rc := range bounce.Recipients(env, k) {
		allowed[rc.Addr] = true
	}
	var want []spool.Recipient
	for _, rc := range rcpts {
		if allowed[rc.Addr] {
			want = append(want, rc)
		}
	}
	if len(want) == 0 {
		return nil
	}
	content, err := os.Open(contentPath)
	if err != nil {
		return fmt.Errorf("notice for %s: %w", env.ID, err)
	}
	defer content.Close()
	now := time.Now()
	w, err := r.spool.Create(now)
	if err != nil {
		return fmt.Errorf("notice for %s: %w", env.ID, err)
	}
	remoteMTA, _, _ := net.SplitHostPort(r.upstream())
	opts := bounce.Options{ReportingMTA: r.cfg.Domain, RemoteMTA: remoteMTA, Now: now,
		RetryUntil: env.Arrival.Add(r.cfg.Delivery.MaxQueueLifetime)}
	if err := bounce.Build(w, env, content, k, want, opts); err != nil {
		w.Abort()
		return fmt.Errorf("notice for %s: %w", env.ID, err)
	}
	ne := &spool.Envelope{
		From:       "",
		Recipients: []spool.Recipient{{Addr: env.From, Status: spool.Pending}},
		BodyType:   env.BodyType,
		Client:     "local",
		Helo:       r.cfg.Domain,
		Arrival:    now,
		Bounce:     true,
	}
	if err := w.Prepare(ne); err != nil {
		w.Abort()
		return err
	}
	if err := w.Commit(false); err != nil {
		w.Abort()
		return err
	}
	r.maillog.Notice(w.ID(), env.ID, k.String(), env.From, len(want))
	if r.sched != nil {
		r.sched.Kick(false)
	}
	return nil
}
