// Package reload runs a process's table reloads in one goroutine: on a
// timer, for the files that changed, and whenever asked, so that nothing
// re-reads tables inside a delivery worker or an SMTP session.
//
// A Loader does the reading; it keeps what is in force when a new version
// fails to load, and reports the failure itself.
package reload

import (
	"context"
	"time"
)

// Loader re-reads tables. With all, every table is read again whether or
// not its file changed (SIGHUP); otherwise only those whose file changed.
type Loader interface {
	Reload(all bool)
}

// Runner calls its Loader from Run's goroutine.
type Runner struct {
	loader  Loader
	every   time.Duration
	changed chan struct{}      // look for changed files now
	all     chan struct{}      // read everything now
	allDone chan chan struct{} // read everything now, and say when done
}

// New returns a Runner that looks for changed files every interval.
func New(l Loader, every time.Duration) *Runner {
	return &Runner{loader: l, every: every, changed: make(chan struct{}, 1), all: make(chan struct{}, 1),
		allDone: make(chan chan struct{})}
}

// Request asks for the changed files to be read now (after the enforcer
// wrote a table, say). It never blocks; requests made while one is
// pending are merged.
func (r *Runner) Request() { signal(r.changed) }

// All asks for everything to be read again now (SIGHUP). It never blocks.
func (r *Runner) All() { signal(r.all) }

// AllWait reads everything again, as All, and returns when that is done
// (or ctx ends, or allWaitLimit passed): what SIGHUP does next, a rescan
// of the spool, must find the new tables in force, or a message flushed
// after a change to transport_maps would go to the old next hop.
func (r *Runner) AllWait(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, allWaitLimit)
	defer cancel()
	done := make(chan struct{})
	select {
	case r.allDone <- done:
	case <-ctx.Done():
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
}

// allWaitLimit bounds AllWait, so that a table file that cannot be read
// (a hung network file system) never keeps SIGHUP's caller, which also
// handles SIGTERM, waiting for good.
const allWaitLimit = 30 * time.Second

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run reloads until ctx ends, then returns.
func (r *Runner) Run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.loader.Reload(false)
		case <-r.changed:
			r.loader.Reload(false)
		case <-r.all:
			r.loader.Reload(true)
		case done := <-r.allDone:
			r.loader.Reload(true)
			close(done)
		case <-ctx.Done():
			return
		}
	}
}
