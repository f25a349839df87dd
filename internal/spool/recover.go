package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// RecoveryReport says what Recover found and did.
type RecoveryReport struct {
	Ready, Failed, Held int
	Released            []string // stale claims made Ready again
	Quarantined         []string // torn or unacknowledged messages moved aside
	// InUse counts the messages left alone: locked by a live worker,
	// another program's receipt that may be under way (foreignReceipt),
	// one whose envelope could not be read (an I/O error), or files
	// that recovery would set aside but whose name is not a message id
	// (spoolID): another program's, in a shared directory.
	InUse int
	// Reasons says why each quarantined message was moved aside.
	Reasons map[string]string
	// Replayed counts the journal records of dead processes read;
	// Restored lists the messages the journal gave back (promoted from
	// New, or rewritten after a power loss). TornTails counts journals
	// that ended in a record cut short (never acknowledged);
	// CorruptJournals describes journals with an unreadable record.
	Replayed        int
	Restored        []string
	TornTails       int
	CorruptJournals []string
}

func (r *RecoveryReport) quarantined(s *Spool, id, why string) {
	if !spoolID(id) {
		// Not a name this spool or E-MailRelay gives a message: the
		// spool may be a directory other programs use too
		// (E-MailRelay's guide runs "--spool-dir /tmp"), and their
		// report.content or app.envelope are theirs, not torn mail.
		s.log.Info("spool: files not named as a message are left alone", "id", id, "reason", why)
		r.InUse++
		return
	}
	if !s.quarantine(id, why) {
		return // left in place, and logged: not reported as set aside
	}
	r.Quarantined = append(r.Quarantined, id)
	if r.Reasons == nil {
		r.Reasons = map[string]string{}
	}
	r.Reasons[id] = why
}

func (r RecoveryReport) String() string {
	return fmt.Sprintf("ready=%d failed=%d held=%d released=%d quarantined=%d in_use=%d journal_records=%d restored=%d torn_tails=%d corrupt_journals=%d",
		r.Ready, r.Failed, r.Held, len(r.Released), len(r.Quarantined), r.InUse,
		r.Replayed, len(r.Restored), r.TornTails, len(r.CorruptJournals))
}

// Recover brings the spool to a consistent state after a crash, as the
// package comment describes: Replay, then RecoverFiles. It is safe to run
// while other processes use the spool: it touches only messages whose
// content is not locked.
func (s *Spool) Recover() (RecoveryReport, error) {
	rep, err := s.Replay()
	if err != nil {
		return rep, err
	}
	frep, err := s.RecoverFiles(context.Background())
	frep.Replayed, frep.Restored, frep.TornTails, frep.CorruptJournals = rep.Replayed, rep.Restored, rep.TornTails, rep.CorruptJournals
	for _, id := range rep.Quarantined { // set aside by the replay (salvage.go)
		frep.Quarantined = append(frep.Quarantined, id)
		if frep.Reasons == nil {
			frep.Reasons = map[string]string{}
		}
		frep.Reasons[id] = rep.Reasons[id]
	}
	return frep, err
}

// Replay settles the journals of processes that died (journal.go). It reads
// at most about a second of accepted mail per dead process, so a daemon
// runs it before it accepts mail, and RecoverFiles in the background.
func (s *Spool) Replay() (RecoveryReport, error) {
	var rep RecoveryReport
	// On error the segments stay; the next start replays them again.
	err := s.replayJournal(&rep)
	return rep, err
}

// RecoverFiles settles every message file whose content is not locked, as
// the package comment describes, until done or ctx ends. Each message's
// files are looked at again under its lock, so the server and forwarders
// of this or another process may work on the spool meanwhile.
func (s *Spool) RecoverFiles(ctx context.Context) (RecoveryReport, error) {
	var rep RecoveryReport
	des, err := os.ReadDir(s.dir)
	if err != nil {
		return rep, fmt.Errorf("spool: %w", err)
	}
	s.cleanScratch()
	type files struct {
		content bool
		states  []State
	}
	msgs := map[string]*files{}
	var ids, guards, temps []string
	for _, de := range des {
		name := de.Name()
		if _, ok := guardName(name); ok {
			guards = append(guards, name)
			continue
		}
		if _, ok := filterTempName(name); ok {
			temps = append(temps, name)
			continue
		}
		if ownTemp(name) {
			// A half-written envelope replacement: the old envelope is
			// still in place, so the temporary file is garbage, unless
			// another process is writing it now (a queue command, or
			// submit, while the daemon starts): only old ones go.
			if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > time.Hour {
				os.Remove(s.dir + "/" + name)
			}
			continue
		}
		if ownHidden(name, ".content") {
			// A served message being written out (hot.go) by a process
			// that died: the journal still has it, or it was linked
			// into place already.
			s.removeUnlocked(name)
			continue
		}
		if ownHidden(name, ".envelope") {
			// Its envelope, on its way into place: writing one out
			// takes milliseconds, so an old one is garbage.
			if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > time.Minute {
				os.Remove(s.dir + "/" + name)
			}
			continue
		}
		id, st, isContent, ok := parseName(name)
		if !ok {
			continue
		}
		m := msgs[id]
		if m == nil {
			m = &files{}
			msgs[id] = m
			ids = append(ids, id)
		}
		if isContent {
			m.content = true
		} else {
			m.states = append(m.states, st)
		}
	}
	// Before the messages are looked at: a content a client filter was
	// rewriting is empty, or cut short, until its copy is put back.
	s.restoreGuards(guards)
	s.removeFilterTemps(temps)
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		m := msgs[id]
		if s.inReceipt(id) {
			rep.InUse++ // a filter may have renamed its content file (Spool.receiving)
			continue
		}
		lock, err := s.lockContent(id)
		if errors.Is(err, ErrBusy) {
			rep.InUse++
			continue
		}
		if !m.content || errors.Is(err, ErrNotFound) {
			// A message's content is created before its envelope and
			// removed after it, so an envelope still there now, with
			// no content, is torn, not on its way in or out.
			if lock == nil && len(s.states(id)) > 0 {
				rep.quarantined(s, id, "envelope without content file (torn)")
			}
			if lock != nil {
				lock.Close()
			}
			continue
		}
		if errors.Is(err, errNotRegular) {
			// A link, a named pipe, a directory: never the spool's
			// file, never delivered; left, it is refused every
			// second for good.
			rep.quarantined(s, id, err.Error())
			continue
		}
		if err != nil {
			continue
		}
		// The listing may be stale: whoever held the lock until now may
		// have moved or removed the envelope. One envelope still where
		// it was listed is where it is (relaykeeper never makes two).
		states := m.states
		if len(states) != 1 {
			states = s.states(id)
		} else if _, err := os.Lstat(s.envelopePath(id, states[0])); err != nil {
			states = s.states(id)
		}
		s.recoverOne(id, states, lock, &rep)
		lock.Close()
	}
	if err := s.syncDir(); err != nil {
		return rep, fmt.Errorf("spool: %w", err)
	}
	return rep, nil
}

// recoverOne settles one message whose content lock the caller holds.
func (s *Spool) recoverOne(id string, states []State, lock *os.File, rep *RecoveryReport) {
	if (len(states) == 0 || len(states) == 1 && states[0] == New) && s.foreignReceipt(id) {
		rep.InUse++
		return
	}
	if len(states) == 0 {
		rep.quarantined(s, id, "content file without envelope (receipt interrupted, or delivered message not yet removed)")
		return
	}
	if len(states) > 1 {
		// Two envelopes for one message cannot come from relaykeeper's
		// own renames; a person or a script made them. Keep both aside.
		rep.quarantined(s, id, fmt.Sprintf("several envelope files %v", states))
		return
	}
	st := states[0]
	if st == New {
		rep.quarantined(s, id, "receipt never completed (the client was not told 250)")
		return
	}
	if _, err := s.readEnvelope(id, st); err != nil {
		if pe := (*os.PathError)(nil); errors.As(err, &pe) {
			// Not torn: the file could not be opened or read (an I/O
			// error, a permission). Set aside, a whole acknowledged
			// message would wait for an administrator's restore; left,
			// it is tried again by the forwarders and the next start.
			s.log.Error("spool: a message's envelope cannot be read; left in place", "id", id, "err", err)
			rep.InUse++
			if st == Claimed {
				// A stale claim is released all the same: the
				// forwarders take only ready messages, and a claim
				// left would wait for the next start.
				if err := rename(s.envelopePath(id, Claimed), s.envelopePath(id, Ready)); err == nil {
					rep.Released = append(rep.Released, id)
				}
			}
			return
		}
		rep.quarantined(s, id, err.Error())
		return
	}
	if fi, err := lock.Stat(); err == nil && fi.Size() == 0 {
		// relaykeeper's content begins with its Received: header, and
		// E-MailRelay's with its own: an empty one is torn (a power
		// loss after a writer that does not fsync, a truncating
		// filter). Sent, the recipient would get nothing and the
		// message be gone as delivered.
		rep.quarantined(s, id, emptyContent(id).Error())
		return
	}
	switch st {
	case Claimed:
		if err := rename(s.envelopePath(id, Claimed), s.envelopePath(id, Ready)); err != nil {
			s.log.Error("releasing stale claim failed", "id", id, "err", err)
			return
		}
		rep.Released = append(rep.Released, id)
		rep.Ready++
	case Ready:
		rep.Ready++
	case Failed:
		rep.Failed++
	case Held:
		rep.Held++
	}
}

// emptyContent is the error for a message whose content file is empty:
// torn, never a message a client sent (it has the Received: header).
func emptyContent(id string) error {
	return fmt.Errorf("spool: %s.content is %w", id, errEmptyContent)
}

// errEmptyContent is what emptyContent's errors wrap.
var errEmptyContent = errors.New("empty (torn)")

// SetAsideDamaged moves a message that err (a claim's) says is damaged
// beyond any retry, its content file empty or not a regular file, into
// the quarantine directory, as recovery does at the next start; true if
// it did. No claim can ever take such a message, so moving it takes it
// from nobody; the running relay stops trying it at every poll.
func (s *Spool) SetAsideDamaged(id string, err error) bool {
	if !errors.Is(err, errEmptyContent) && !errors.Is(err, errNotRegular) {
		return false
	}
	return s.quarantine(id, strings.TrimPrefix(err.Error(), "spool: "))
}

// ownTemp says whether name is a temporary file a spool writer makes:
// safefile's NAME.RANDOM.tmp for a spool file NAME. Recovery removes only
// those: the spool may be a directory other programs use too (E-MailRelay's
// guide runs "--spool-dir /tmp"), and their *.tmp files are theirs.
func ownTemp(name string) bool {
	rest, ok := strings.CutSuffix(name, ".tmp")
	if !ok || strings.HasPrefix(name, ".") {
		return false
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 || i == len(rest)-1 || strings.Trim(rest[i+1:], "0123456789") != "" {
		return false
	}
	_, _, _, ok = parseName(rest[:i])
	return ok
}

// ownHidden says whether name is ".ID" + suffix for an id this spool makes
// (newID's sixteen hex digits): hot.go's files on their way into place.
func ownHidden(name, suffix string) bool {
	id, ok := strings.CutSuffix(strings.TrimPrefix(name, "."), suffix)
	if !ok || !strings.HasPrefix(name, ".") || len(id) != 16 {
		return false
	}
	return strings.Trim(id, "0123456789ABCDEF") == ""
}

// removeUnlocked removes a spool file that nobody holds locked.
func (s *Spool) removeUnlocked(name string) {
	// O_NONBLOCK: a named pipe of that name opens at once rather than
	// wait for a writer for good (and the relay's start with it).
	f, err := openFile(filepath.Join(s.dir, name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
		os.Remove(filepath.Join(s.dir, name))
	}
}

// cleanScratch removes proxy scratch files left by a process that died
// while passing a message on. A day old is older than any transaction.
func (s *Spool) cleanScratch() {
	des, err := os.ReadDir(s.ScratchDir())
	if err != nil {
		return
	}
	for _, de := range des {
		if fi, err := de.Info(); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
			os.Remove(filepath.Join(s.ScratchDir(), de.Name()))
		}
	}
}

// states lists the envelope files a message has now.
func (s *Spool) states(id string) []State {
	var out []State
	for _, st := range []State{New, Ready, Claimed, Failed, Held} {
		if _, err := os.Lstat(s.envelopePath(id, st)); err == nil {
			out = append(out, st)
		}
	}
	return out
}

// foreignWriteAge is how long a message named by another program may
// take to be received: E-MailRelay's transaction, from MAIL to the end of
// its filters.
const foreignWriteAge = time.Hour

// foreignReceipt reports whether a message with no envelope, or a .new
// one, may be another program's receipt under way: E-MailRelay and
// emailrelay-submit, sharing the spool, create the content file as the
// transaction starts and write it as the data comes, then the envelope,
// and take no lock, so that a lock cannot tell a live writer from a dead
// one as it does for relaykeeper's own messages (named by their id).
// Moved to quarantine, the content would be written there through the
// writer's descriptor, and the message acknowledged with its envelope in
// the spool and its content set aside. So such a message is left alone
// until its files are foreignWriteAge old.
func (s *Spool) foreignReceipt(id string) bool {
	if ownID(id) {
		return false
	}
	for _, p := range []string{s.contentPath(id), s.envelopePath(id, New)} {
		if fi, err := os.Stat(p); err == nil && time.Since(fi.ModTime()) < foreignWriteAge {
			return true
		}
	}
	return false
}

// spoolID reports whether id is of a form a message gets in a spool:
// relaykeeper's (ownID) or E-MailRelay's (emailrelay.PID.SECONDS.SEQ, its
// own and emailrelay-submit's). Recovery sets aside only messages so
// named.
func spoolID(id string) bool {
	if ownID(id) {
		return true
	}
	f := strings.Split(id, ".")
	if len(f) != 4 || f[0] != "emailrelay" {
		return false
	}
	for _, n := range f[1:] {
		if n == "" || strings.Trim(n, "0123456789") != "" {
			return false
		}
	}
	return true
}

// ownID reports whether id is of the form relaykeeper gives its messages
// (newID): sixteen upper-case hex digits.
func ownID(id string) bool {
	if len(id) != 16 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
