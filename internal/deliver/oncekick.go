package deliver

import (
	"context"
	"sync"
)

// OnceKicker forwards the spool once each time it is kicked, for a relay
// that forwards only when told to (no --poll, no --forward-on-disconnect):
// a server filter that exits 103 (E-MailRelay's "rescan the spool") is
// such an order. Each run is RunOnce of a scheduler New makes; a kick
// during a run asks for one more run after it, so runs never overlap and
// a message stored meanwhile is not left behind.
type OnceKicker struct {
	Ctx context.Context
	New func() *Scheduler

	mu             sync.Mutex
	running, again bool
	wg             sync.WaitGroup
}

// Kick starts a run, or asks the one under way for another.
func (k *OnceKicker) Kick(bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.running {
		k.again = true
		return
	}
	k.running = true
	k.wg.Add(1)
	go k.run()
}

func (k *OnceKicker) run() {
	defer k.wg.Done()
	for {
		if k.Ctx.Err() == nil {
			k.New().RunOnce(k.Ctx)
		}
		k.mu.Lock()
		if !k.again || k.Ctx.Err() != nil {
			k.running, k.again = false, false
			k.mu.Unlock()
			return
		}
		k.again = false
		k.mu.Unlock()
	}
}

// Wait waits for the run under way, if any (at shutdown, once Ctx ends).
func (k *OnceKicker) Wait() { k.wg.Wait() }
