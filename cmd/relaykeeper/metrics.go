package main

import (
	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/metrics"
	"github.com/relaykeeper/relaykeeper/internal/stats"
)

// newMetrics builds the metrics and hooks them to the mail log and the
// spool; the admin HTTP listener serves them.
func (r *relay) newMetrics() *metrics.Metrics {
	opts := metrics.Options{Queue: r.spool, Sessions: relaySessions{r}, Threshold: r.threshold(), Log: r.log}
	if en := r.enforcer; en != nil {
		if en.Bans != nil {
			opts.Bans = en.Bans
		}
		if en.SenderAccess != "" {
			opts.Blocks = enforce.BlockTable{Path: en.SenderAccess}
		}
	}
	m := metrics.New(opts)
	r.maillog.Observe(m)
	r.spool.ObserveSyncs(m)
	return m
}

// threshold is when an upstream rejection rate raises an alert.
func (r *relay) threshold() stats.Threshold {
	return stats.Threshold{Rate: r.cfg.Enforce.AlertRejectionRate, Min: r.cfg.Enforce.AlertMinReplies}
}

// relaySessions counts the open SMTP sessions of every listener.
type relaySessions struct{ r *relay }

func (s relaySessions) Sessions() int {
	n := 0
	for _, srv := range s.r.servers {
		n += int(srv.Active())
	}
	return n
}
