package enforce

import (
	"log/slog"
	"net/netip"
	"time"
)

// ReloadBans re-reads the ban file if it changed, warns of the lines it
// skipped (at the first call, those of the first read), and writes an unban event to the mail log for each ban that
// was in force at the last call and is no longer: expired, or lifted
// before its end (`relaykeeper bans remove`, the dashboard, a hand edit).
// fail2ban has Ban and Unban lines; a mail log with only the one leaves an
// administrator asking since when a client may send again. The daemon
// calls it on its table timer, so an unban is written within seconds.
func (e *Enforcer) ReloadBans(log *slog.Logger) {
	if e.Bans == nil {
		return
	}
	e.banMu.Lock()
	if e.inForce != nil {
		// After banMu is unlocked. Not at the first call, at start:
		// the spool's recovery has not yet put back what a crash left
		// (a dead relay's journal, its claims), and holdLater would
		// forget those messages as gone; Recovered holds them.
		defer e.holdLater()
	}
	defer e.banMu.Unlock()
	// The first call, at start, warns of what the file's first read
	// skipped; later ones of what a changed file's reading skipped.
	if changed, err := e.Bans.Reload(); err != nil {
		log.Error("ban list not reloaded", "err", err)
	} else if changed || e.inForce == nil {
		e.Bans.WarnProblems(log)
	}
	if e.inForce == nil {
		e.loadPendingLocked() // at start: what a crash left to hold
	}
	now := e.now()
	cur := map[netip.Prefix]inForceBan{}
	for _, b := range e.Bans.List() {
		if b.Active(now) {
			cur[b.Network()] = inForceBan{b.Until, cmpAddr(b.Client, b.IP)}
		}
	}
	if e.inForce != nil && e.MailLog != nil {
		for p, was := range e.inForce {
			if _, ok := cur[p]; ok {
				continue
			}
			reason := "lifted"
			if !now.Before(was.until) {
				reason = "expired"
			}
			client := banTarget(p)
			if was.client.IsValid() && !p.IsSingleIP() && p.Contains(was.client) {
				client = was.client.String()
			}
			e.MailLog.Unban(client, p.String(), was.until, reason)
		}
	}
	e.inForce = cur
}

// NoteBan records a ban whose line was just written (BanWriter.OnWritten):
// ReloadBans then writes its unban line even if it is lifted before the
// next call.
func (e *Enforcer) NoteBan(ev BanEvent) {
	e.banMu.Lock()
	defer e.banMu.Unlock()
	if e.inForce == nil {
		e.inForce = map[netip.Prefix]inForceBan{}
	}
	if p := ev.Network(); p.IsValid() && ev.Until.After(e.inForce[p].until) {
		e.inForce[p] = inForceBan{ev.Until, banIP(ev.Client)}
	}
}

// inForceBan is a ban in force as ReloadBans last saw it.
type inForceBan struct {
	until  time.Time
	client netip.Addr
}
