package enforce

import (
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// A ban holds every ready message the banned client submitted: each
// would cost the relay more reputation. An administrator releases or
// deletes them (`relaykeeper queue release|delete`).
//
// A message of the client's being delivered at that moment cannot be
// held now. If the upstream takes it, it is gone; if it comes back (a
// deferral), it must not go out at its next retry: such messages are
// remembered, and held when the enforcer next hears of them (Act: their
// refusal, Outcome.Hold) or finds them ready again (holdLater, on the ban
// list's reload timer).
//
// The refused message itself (id) is left to its own outcome (Outcome.Hold).
//
// A ban of a network holds the mail of every client in it, but for those
// Bans.Spare spares (a welcomelisted or trusted neighbour; one welcomelisted
// by host name by the name its message's envelope records).

// marked is a message markPending remembered, to hold once the ban is in
// force.
type marked struct {
	id, from string
	ip       netip.Addr
	ready    bool
}

// markPending remembers, in the pending file, every queued message (ready
// or being delivered) of a client in net but id, before the ban that
// covers them is saved: a crash between the ban and its holds must not
// leave a ban whose client's queued mail goes out after the restart (the
// pending file is what the restarted queue asks, HoldNow). A message
// remembered for a ban that a crash then kept from being saved is sent:
// pendingHold asks whether its client is banned.
func (e *Enforcer) markPending(net netip.Prefix, id string) []marked {
	if e.Spool == nil || !net.IsValid() {
		return nil
	}
	ents, err := e.Spool.List()
	if err != nil {
		return nil
	}
	var out []marked
	for _, ent := range ents {
		if ent.ID == id || ent.State != spool.Ready && ent.State != spool.Claimed {
			continue
		}
		env, _, err := e.Spool.Read(ent.ID)
		if err != nil {
			continue
		}
		// A client the welcomelist names by its verified host name is
		// spared as one it lists by address (holdMarked): no ban holds
		// a welcomelisted client's mail.
		if ip := ClientIP(env.Client); net.Contains(ip) && (e.Bans == nil || e.Bans.Spare == nil || !e.Bans.Spare.Welcomed(ip, env.ClientName)) {
			out = append(out, marked{id: ent.ID, from: env.From, ip: ip, ready: ent.State == spool.Ready})
		}
	}
	if len(out) == 0 {
		return nil
	}
	e.banMu.Lock()
	if e.holdPending == nil {
		e.holdPending = map[string]netip.Addr{}
	}
	for _, m := range out {
		e.holdPending[m.id] = m.ip
	}
	e.banning++ // until holdMarked
	e.savePendingLocked()
	e.banMu.Unlock()
	return out
}

// holdMarked holds, once the ban is saved, the ready messages markPending
// remembered, and forgets them and those whose client the ban spares;
// those being delivered stay remembered.
func (e *Enforcer) holdMarked(ms []marked) {
	if len(ms) == 0 {
		return
	}
	defer func() {
		e.banMu.Lock()
		e.banning--
		e.banMu.Unlock()
	}()
	var forget []string
	for _, m := range ms {
		if _, due := e.Bans.Due(m.ip); !due {
			forget = append(forget, m.id) // spared: its own address is not banned
			continue
		}
		if m.ready && e.holdOne(m.id, m.ip, m.from) {
			forget = append(forget, m.id)
		}
	}
	if len(forget) == 0 {
		return
	}
	e.banMu.Lock()
	for _, id := range forget {
		delete(e.holdPending, id)
	}
	e.savePendingLocked()
	e.banMu.Unlock()
}

// holdOne holds a ready message; false if it is claimed (being delivered).
func (e *Enforcer) holdOne(id string, ip netip.Addr, from string) bool {
	c, err := e.Spool.Lock(id)
	if err != nil {
		return false
	}
	if err := c.Move(spool.Held); err != nil {
		c.Unlock()
		return true // gone meanwhile, or the spool fails: nothing to retry
	}
	e.MailLog.Hold(id, ip.String(), from, "client banned")
	return true
}

// pendingHold reports whether message id was being delivered when its
// client was banned, and is still to be held (its client still banned).
// It is then forgotten: the caller holds it, and an administrator who
// releases it later releases it for good.
//
// While a ban is being saved (markPending, then Bans.Add), a message it
// marked is not banned yet: it goes out now, but stays remembered, to be
// held if it comes back, as one the ban found being delivered is.
func (e *Enforcer) pendingHold(id string) bool {
	e.banMu.Lock()
	defer e.banMu.Unlock()
	ip, ok := e.holdPending[id]
	if !ok {
		return false
	}
	banned := false
	if e.Bans != nil {
		_, banned = e.Bans.Due(ip)
	}
	if !banned && e.banning > 0 {
		return false
	}
	delete(e.holdPending, id)
	e.savePendingLocked()
	return banned
}

// HoldNow implements deliver.Holds: the queue asks as it claims each
// message, so that one of the pending messages is held even when the
// queue claims it before holdLater finds it ready (just after a restart,
// as recovery puts it back).
func (e *Enforcer) HoldNow(id string) bool { return e.anyPending.Load() && e.pendingHold(id) }

// holdLater holds the messages that were being delivered when their
// client was banned and are ready again; those gone, or whose client's
// ban was lifted, are forgotten.
func (e *Enforcer) holdLater() {
	if e.Spool == nil {
		return
	}
	e.banMu.Lock()
	ids := make(map[string]netip.Addr, len(e.holdPending))
	for id, ip := range e.holdPending {
		ids[id] = ip
	}
	e.banMu.Unlock()
	for id, ip := range ids {
		env, st, err := e.Spool.Read(id)
		_, banned := e.Bans.Due(ip)
		switch {
		case err == nil && st == spool.Claimed && banned:
			continue // still being delivered
		case err == nil && st == spool.Ready && banned:
			if !e.holdOne(id, ip, env.From) {
				continue
			}
		}
		e.banMu.Lock()
		if !banned && e.banning > 0 {
			// A ban being saved: not in force yet (pendingHold).
			e.banMu.Unlock()
			continue
		}
		delete(e.holdPending, id)
		e.savePendingLocked()
		e.banMu.Unlock()
	}
}

// Recovered holds, once the spool's recovery has put back what a crash
// left being delivered, the messages of banned clients that were in
// flight then (the pending file): they must not go out at their next
// attempt. nil-safe.
func (e *Enforcer) Recovered() {
	if e != nil {
		e.holdLater()
	}
}

// pendingFile keeps holdPending across a restart, beside the ban file:
// a message being delivered when its client was banned, then back in the
// queue after a crash, is still held. "" when there is no ban file.
//
// Relays that share a ban file share this file too, each with its own
// spool: a line is "ID IP SPOOL", SPOOL the directory of the relay whose
// message ID is. A relay reads its own lines only, and rewrites the file
// under the ban file's kind of lock (FILE.lock), re-reading it and keeping
// the other relays' lines as it found them. A line without SPOOL (written
// before the file was shared) is taken by whoever reads it.
func (e *Enforcer) pendingFile() string {
	if e.Bans == nil || e.Bans.Path() == "" {
		return ""
	}
	return filepath.Join(filepath.Dir(e.Bans.Path()), "hold-pending")
}

// pendingOwner is this relay's name in the pending file: its spool
// directory, absolute; "" without a spool.
func (e *Enforcer) pendingOwner() string {
	if e.Spool == nil {
		return ""
	}
	dir, err := filepath.Abs(e.Spool.Dir())
	if err != nil {
		return e.Spool.Dir()
	}
	// One spool, one name: a relay started with another spelling of the
	// same directory (a symbolic link) must find its own lines.
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		return real
	}
	return dir
}

// pendingLine is one line of the pending file: ID, IP and the owner's
// spool ("" for a line that names none).
type pendingLine struct {
	id    string
	ip    netip.Addr
	owner string
}

// parsePending reads the pending file's lines; those that do not parse
// are dropped.
func parsePending(data string) []pendingLine {
	var out []pendingLine
	for line := range strings.Lines(data) {
		id, rest, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
		ipText, owner, _ := strings.Cut(rest, " ")
		if ip, err := netip.ParseAddr(ipText); err == nil && id != "" {
			out = append(out, pendingLine{id, ip, owner})
		}
	}
	return out
}

// savePendingLocked writes holdPending (banMu held) in place of this
// relay's lines, keeping the other relays'; the file goes when nothing
// is pending. A failure costs only the restart case.
func (e *Enforcer) savePendingLocked() {
	e.anyPending.Store(len(e.holdPending) > 0)
	path := e.pendingFile()
	if path == "" {
		return
	}
	unlock, err := flockPath(path + ".lock")
	if err != nil {
		e.log().Warn("messages to hold not saved; a restart forgets them", "file", path, "err", err)
		return
	}
	defer unlock()
	owner := e.pendingOwner()
	var lines []string
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		// The other relays' lines cannot be kept: better keep the
		// file as it is than lose them.
		e.log().Warn("messages to hold not saved; a restart forgets them", "file", path, "err", err)
		return
	}
	for _, l := range parsePending(string(data)) {
		if l.owner != "" && l.owner != owner {
			lines = append(lines, l.id+" "+l.ip.String()+" "+l.owner+"\n")
		}
	}
	for id, ip := range e.holdPending {
		lines = append(lines, strings.TrimSuffix(id+" "+ip.String()+" "+owner, " ")+"\n")
	}
	if len(lines) == 0 {
		os.Remove(path)
		return
	}
	slices.Sort(lines)
	// As the ban file beside it: root ("sudo relaykeeper ...", a relay
	// run by hand) leaves it the directory's owner's, so that the relay
	// run as its own user reads it after a restart.
	opts := safefile.Options{Perm: 0o640, Owner: safefile.DirOwner(filepath.Dir(path))}
	err = safefile.Replace(path, opts, func(w io.Writer) error {
		_, err := io.WriteString(w, strings.Join(lines, ""))
		return err
	})
	if err != nil {
		e.log().Warn("messages to hold not saved; a restart forgets them", "file", path, "err", err)
	}
}

// loadPendingLocked reads this relay's lines of the pending file (banMu
// held), at start.
func (e *Enforcer) loadPendingLocked() {
	data, err := os.ReadFile(e.pendingFile())
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			e.log().Warn("messages to hold after a restart not read; those a crash left in flight may be delivered", "err", err)
		}
		return
	}
	owner := e.pendingOwner()
	for _, l := range parsePending(string(data)) {
		if l.owner != "" && l.owner != owner {
			continue // another relay's, sharing the ban file
		}
		if e.holdPending == nil {
			e.holdPending = map[string]netip.Addr{}
		}
		e.holdPending[l.id] = l.ip
	}
	e.anyPending.Store(len(e.holdPending) > 0)
}
