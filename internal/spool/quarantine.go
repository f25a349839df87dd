package spool

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// The administrator's side of recovery: what it set aside in the quarantine
// directory (file.go's quarantine keeps every file's name), and putting a
// repaired message back; and telling a claim whose forwarder died from one
// being delivered.

// QuarantinePath is the quarantine directory.
func (s *Spool) QuarantinePath() string { return filepath.Join(s.dir, quarantineDir) }

// maxQuarantineNames bounds the names keepInQuarantine and
// moveToQuarantine try for one copy: name, name.2, ... name.N.
const maxQuarantineNames = 1000

// keepInQuarantine writes data to the file name in the quarantine
// directory, or to name.2, name.3 and on when another copy has the name
// already: a journal segment's number, and so the name of its copies,
// repeats when the clock has stepped back since (newSegment numbers
// segments from the time), and a copy written over is the only trace of
// the message it holds. A copy there with the same octets is that copy
// again (a segment replayed at two starts): its name is returned, and
// nothing written. The copy is synced, then the quarantine directory, so
// that it outlives the segment, which is removed after the replay.
func (s *Spool) keepInQuarantine(name string, data []byte) (string, error) {
	for i := 1; i <= maxQuarantineNames; i++ {
		q := quarantineName(name, i)
		f, err := openFile(q, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
		if errors.Is(err, os.ErrExist) {
			if old, rerr := os.ReadFile(q); rerr == nil && bytes.Equal(old, data) {
				return q, nil
			}
			continue
		}
		if err != nil {
			return "", err
		}
		s.chown(f)
		_, err = f.Write(data)
		if err == nil {
			err = s.syncFile(f)
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = s.syncPath(filepath.Dir(q))
		}
		if err != nil {
			os.Remove(q) // a copy cut short (a full disk) is no copy
			return "", err
		}
		return q, nil
	}
	return "", fmt.Errorf("spool: %s and %d more names taken in the quarantine", name, maxQuarantineNames-1)
}

// moveToQuarantine moves the file at path to name in the quarantine
// directory, or to the first of name.2, name.3 and on that is free, never
// over another file (as keepInQuarantine), and returns where it went. The
// quarantine directory and path's are synced.
func (s *Spool) moveToQuarantine(path, name string) (string, error) {
	for i := 1; i <= maxQuarantineNames; i++ {
		q := quarantineName(name, i)
		// A hard link fails on a name taken, as a rename does not.
		err := os.Link(path, q)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err == nil {
			err = os.Remove(path)
			if err != nil {
				os.Remove(q)
			}
		} else if _, lerr := os.Lstat(q); errors.Is(lerr, os.ErrNotExist) {
			err = os.Rename(path, q) // a file system without hard links
		}
		if err != nil {
			return "", err
		}
		if err := s.syncPath(filepath.Dir(q)); err != nil {
			return q, err
		}
		return q, s.syncPath(filepath.Dir(path))
	}
	return "", fmt.Errorf("spool: %s and %d more names taken in the quarantine", name, maxQuarantineNames-1)
}

// quarantineName is the i-th name for a copy: name itself, then name.2
// and on.
func quarantineName(name string, i int) string {
	if i == 1 {
		return name
	}
	return name + "." + strconv.Itoa(i)
}

// Quarantined is one message in the quarantine directory.
type Quarantined struct {
	ID string
	// Files are its files' names there, content first.
	Files []string
	// States are the states of its envelopes when it was set aside.
	States []State
	// Size is the content's size, -1 without a content file.
	Size int64
	// Moved is when it was set aside (the newest file's change time: a
	// rename sets it).
	Moved time.Time
	// Env is its envelope, when it has one that parses.
	Env *Envelope
	// Problem says why Restore would refuse it; empty if it would not
	// (short of an id taken in the spool meanwhile).
	Problem string
}

// ListQuarantine returns the quarantined messages in id order, and the
// names of the journal segments kept there (replay.go's journal-*).
func (s *Spool) ListQuarantine() ([]Quarantined, []string, error) {
	ids, journals, err := s.quarantineNames()
	if err != nil {
		return nil, nil, err
	}
	out := make([]Quarantined, 0, len(ids))
	for _, id := range ids {
		out = append(out, s.inspectQuarantined(id))
	}
	return out, journals, nil
}

// QuarantineCount returns how many messages the quarantine holds, from
// their file names alone: cheap enough for every scrape of the metrics.
func (s *Spool) QuarantineCount() (int, error) {
	ids, _, err := s.quarantineNames()
	return len(ids), err
}

// quarantineNames returns the ids of the quarantined messages in order, and
// the names of the journal segments kept there.
func (s *Spool) quarantineNames() (ids, journals []string, err error) {
	des, err := os.ReadDir(s.QuarantinePath())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil, nil
	}
	if errors.Is(err, os.ErrPermission) {
		return nil, nil, s.denied(err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	seen := map[string]bool{}
	for _, de := range des {
		if strings.HasPrefix(de.Name(), "journal-") {
			journals = append(journals, de.Name())
			continue
		}
		if id, _, _, ok := parseName(de.Name()); ok && !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids, journals, nil
}

// inspectQuarantined gathers what the quarantine holds of id.
func (s *Spool) inspectQuarantined(id string) Quarantined {
	q := Quarantined{ID: id, Size: -1}
	dir := s.QuarantinePath()
	var contentMode uint32
	note := func(name string) bool {
		var st syscall.Stat_t
		if syscall.Lstat(filepath.Join(dir, name), &st) != nil {
			return false
		}
		q.Files = append(q.Files, name)
		if t := time.Unix(st.Ctim.Unix()); t.After(q.Moved) {
			q.Moved = t
		}
		if strings.HasSuffix(name, ".content") {
			q.Size, contentMode = st.Size, st.Mode&syscall.S_IFMT
		}
		return true
	}
	note(id + ".content")
	for _, st := range []State{Ready, Claimed, Failed, Held, New} {
		if note(id + stateSuffix[st]) {
			q.States = append(q.States, st)
		}
	}
	switch {
	case len(q.States) == 0:
		q.Problem = "no envelope: write " + id + ".envelope in " + dir + " first"
	case len(q.States) > 1:
		q.Problem = "several envelopes: keep one"
	default:
		b, err := readEnvelopeFile(filepath.Join(dir, id+stateSuffix[q.States[0]]))
		if err == nil {
			q.Env, err = unmarshalBytes(b)
		}
		if err != nil {
			q.Problem = fmt.Sprintf("%s%s: %v: fix it first", id, stateSuffix[q.States[0]], err)
			q.Env = nil
		} else {
			q.Env.ID = id
		}
	}
	switch {
	case q.Problem != "":
	case q.Size < 0:
		q.Problem = "content file " + id + ".content is missing"
	case contentMode != syscall.S_IFREG:
		// Restored, it would be set aside again (recovery).
		q.Problem = "content file " + id + ".content is not a regular file (a link, a named pipe or a directory): put the message there first"
	case q.Size == 0:
		q.Problem = "content file " + id + ".content is empty (torn)"
	}
	return q
}

// InQuarantine reports whether the quarantine holds a file of message id.
func (s *Spool) InQuarantine(id string) bool {
	return ValidID(id) && len(s.inspectQuarantined(id).Files) > 0
}

// RestoreState is the state a quarantined message set aside in state st
// comes back in: a claim is ready again, as recovery makes it; a receipt
// that never ended comes back held, since its client was never told 250
// and may have sent it again.
func RestoreState(st State) State {
	switch st {
	case Claimed:
		return Ready
	case New:
		return Held
	}
	return st
}

// ErrInSpool is Restore's refusal to put back a message whose id the spool
// has.
var ErrInSpool = errors.New("a message with this id is already in the spool")

// Restore moves quarantined message id back into the spool, in
// RestoreState of the state it was set aside in, and returns both. It
// refuses (with the reason ListQuarantine gives) a message without content
// or without exactly one envelope that parses, and one whose id is in the
// spool. The content goes first, locked until its envelope is in place, so
// that no recovery sees it without one.
func (s *Spool) Restore(id string) (from, to State, err error) {
	if !ValidID(id) {
		return 0, 0, ErrNotFound
	}
	if _, err := os.Stat(s.QuarantinePath()); errors.Is(err, os.ErrPermission) {
		return 0, 0, s.denied(err) // not "not in the quarantine"
	}
	q := s.inspectQuarantined(id)
	if len(q.Files) == 0 {
		return 0, 0, ErrNotFound
	}
	if q.Problem != "" {
		return 0, 0, errors.New(q.Problem)
	}
	from = q.States[0]
	to = RestoreState(from)
	if _, err := s.find(id); err == nil {
		return from, to, ErrInSpool
	}
	if _, err := os.Lstat(s.contentPath(id)); err == nil {
		return from, to, ErrInSpool
	}
	dir := s.QuarantinePath()
	lock, err := openFile(filepath.Join(dir, id+".content"), os.O_RDWR, 0)
	if err != nil {
		return from, to, fmt.Errorf("spool: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return from, to, ErrBusy
	}
	// An administrator has typically just edited these files (repair,
	// then restore): their data must be on disk before the renames make
	// them a message again, or a power loss after "restored" leaves an
	// empty content or a cut envelope.
	if err := s.syncFile(lock); err != nil {
		return from, to, fmt.Errorf("spool: %w", err)
	}
	if err := s.syncNamed(filepath.Join(dir, id+stateSuffix[from])); err != nil {
		return from, to, fmt.Errorf("spool: %w", err)
	}
	if err := rename(filepath.Join(dir, id+".content"), s.contentPath(id)); err != nil {
		return from, to, fmt.Errorf("spool: %w", err)
	}
	if err := rename(filepath.Join(dir, id+stateSuffix[from]), s.envelopePath(id, to)); err != nil {
		// Put the content back where it was, rather than leave it
		// without an envelope in the spool.
		rename(s.contentPath(id), filepath.Join(dir, id+".content"))
		return from, to, fmt.Errorf("spool: %w", err)
	}
	if err := s.syncDir(); err != nil {
		return from, to, fmt.Errorf("spool: %w", err)
	}
	if err := s.syncPath(dir); err != nil {
		return from, to, fmt.Errorf("spool: %w", err)
	}
	s.log.Info("message restored from quarantine", "id", id, "state", to.String())
	return from, to, nil
}

// StaleClaim reports whether message id is claimed by nobody: its envelope
// is ID.envelope.busy and no process holds its lock, as a forwarder that
// died leaves it until recovery (the relay's next start) makes it ready.
func (s *Spool) StaleClaim(id string) bool {
	if _, err := os.Lstat(s.envelopePath(id, Claimed)); err != nil {
		return false
	}
	lock, err := s.lockContent(id)
	if err != nil {
		return false
	}
	defer lock.Close()
	_, err = os.Lstat(s.envelopePath(id, Claimed))
	return err == nil
}
