// Package spool is relaykeeper's durable queue on disk: one content file and
// one envelope file per message in a flat directory, with the message's state
// carried by the envelope file's name. It does no networking.
//
// # Files and states
//
// A message with id ID is two files in the spool directory:
//
//	ID.content             the message as received, CRLF line endings,
//	                       with relaykeeper's Received header first
//	ID.envelope.new        state New: being received, or a filter is running
//	ID.envelope            state Ready: accepted, waiting to be forwarded
//	ID.envelope.busy       state Claimed: a forwarder is working on it
//	ID.envelope.bad        state Failed: permanently failed (E-MailRelay's name)
//	ID.envelope.held       state Held: kept until an administrator releases it
//
// The names and the envelope's X-MailRelay- fields follow E-MailRelay 2.x, so
// that its filters and scripts (which edit envelopes and rename .bad files)
// keep working; relaykeeper's own fields start with X-Relaykeeper- and follow
// the End line, where E-MailRelay allows free-form trailer lines.
//
// # Durability
//
// A message counts as accepted, and only then may the SMTP server say 250,
// when Writer.Commit has returned. With a journal open (the daemon; see
// journal.go), that means: the content and envelope (as filters left them)
// are in a journal record that has been fdatasynced, in a batch shared with
// every session committing at the same time, and the envelope has then been
// renamed to ID.envelope, or, for a small message no filter saw, that it is
// served from memory (hot.go) until the checkpoint writes its files. The
// files themselves are synced within a second by a checkpoint (syncfs),
// after which the journal segment is dropped; until then a kill or a power
// loss is repaired from the journal by Recover. Without a
// journal (and for messages over 1 MiB), Commit means: the content file has
// been written and fsynced, the envelope written to ID.envelope.new and
// fsynced, renamed to ID.envelope, and the directory fsynced. Every later
// change of state is a rename followed by a directory fsync, and every
// change of an envelope's contents is a write to a temporary file, an fsync,
// and a rename over the old name; a removal is noted in the journal and
// synced at the next checkpoint (or, without a journal, at once).
//
// # Locks and crashes
//
// Whoever works on a message (the writer receiving it, a forwarder that
// claimed it, an administrator's command) holds an exclusive flock(2) on its
// content file, whose inode never changes while the message lives. A process
// that dies loses its locks, so on start Recover can tell stale files from
// live ones in any process sharing the spool:
//
//   - ID.envelope.busy whose content is not locked: the forwarder died; the
//     claim is released (renamed back to ID.envelope). Delivery may have
//     happened already, so the message may be sent twice; it is never lost.
//   - ID.envelope.new whose content is not locked: the writer died before
//     saying 250, so the client was never told the message was accepted and
//     will send it again. Both files are moved to the quarantine directory
//     and reported, never delivered and never silently dropped.
//   - An envelope that does not parse, or has no content file: torn;
//     quarantined and reported.
//   - A content file with no envelope: a receipt that died before its
//     envelope existed, or a delivered message whose content was not yet
//     removed; quarantined and reported.
//
// The quarantine directory is ".quarantine" inside the spool; nothing there
// is ever read again by relaykeeper.
package spool

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

// State is a message's place in its life, carried by the envelope's file name.
type State int

// The states, in the order a message usually passes through them.
const (
	New State = iota
	Ready
	Claimed
	Failed
	Held
)

var stateSuffix = map[State]string{
	New:     ".envelope.new",
	Ready:   ".envelope",
	Claimed: ".envelope.busy",
	Failed:  ".envelope.bad",
	Held:    ".envelope.held",
}

func (s State) String() string {
	switch s {
	case New:
		return "new"
	case Ready:
		return "ready"
	case Claimed:
		return "claimed"
	case Failed:
		return "failed"
	case Held:
		return "held"
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// ParseState is the inverse of State.String.
func ParseState(s string) (State, bool) {
	for st := New; st <= Held; st++ {
		if st.String() == s {
			return st, true
		}
	}
	return 0, false
}

// Errors returned for a message that cannot be worked on now or at all.
var (
	ErrNotFound = errors.New("spool: no such message")
	ErrBusy     = errors.New("spool: message is locked by another worker")
)

const (
	quarantineDir = ".quarantine"
	scratchDir    = ".proxy"
)

// Spool is a spool directory. Its methods are safe for concurrent use, and
// several processes may share one directory (a daemon and `queue` commands).
type Spool struct {
	dir string
	log *slog.Logger
	// receiving are the ids of this process's open Writers (Create to
	// Commit or Abort). Recovery leaves them alone: a filter that renames
	// a new content file over the old one ("mv $c.tmp $c", E-MailRelay's
	// idiom) leaves the file under the message's name unlocked until the
	// session's Relock, and recovery running then (at start, while mail
	// is accepted) set the message aside as a receipt never completed,
	// after which the client was told 250.
	receiving struct {
		mu  sync.Mutex
		ids map[string]bool
	}
	// Sync is false only in tests and benchmarks that measure the cost of
	// fsync itself; every real use leaves it true.
	noSync bool
	// owner is the owner root gives the files it makes (safefile.DirOwner),
	// or, for a member of the spool's group, that group (sharedGroup).
	owner *safefile.Owner
	// shared: the spool is shared through its group (sharedGroup); the
	// files this process makes are the group's to read and write.
	shared bool
	seq    atomic.Uint32
	// failDirSync, set by tests, is what every directory fsync returns.
	failDirSync error
	// syncObs, if set, sees every fsync's duration; set before sharing.
	syncObs SyncObserver
	// journal, while open, takes small acceptances (group commit).
	journal atomic.Pointer[Journal]
	// hot holds the messages served from the journal (hot.go); noHot,
	// set by tests of the file path, keeps every message in files.
	hot   hotTable
	noHot bool
	// watcher, if set, hears of each commit to Ready (watch.go).
	watcher atomic.Pointer[Watcher]
	// rm removes delivered messages' files in the background (remove.go).
	rm remover
	// boot names the kernel's boot, to tell a journal left by a killed
	// process from one that a power loss interrupted (tests change it).
	boot string
	// unreplayed are the messages of dead journals that replay could not
	// write out (a full disk), tried again by the journal's checkpoints
	// (replay.go).
	unreplayed unreplayed
	// dead: the journals of other processes sharing the spool that died
	// while this one runs (replayDead).
	dead deadJournals
}

// CheckDir says whether dir is an existing directory, for the commands
// that must not let Open make a mistyped spool directory: an empty spool
// no relay reads.
func CheckDir(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil && !fi.IsDir() {
		err = errors.New("not a directory")
	}
	var pe *os.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	if err != nil {
		return fmt.Errorf("spool directory %s: %w", dir, err)
	}
	return nil
}

// Open opens the spool directory dir, creating it (and its quarantine
// directory) if needed.
func Open(dir string, log *slog.Logger) (*Spool, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := mkdirDurable(filepath.Join(dir, quarantineDir), 0o750); err != nil {
		// A reader that may not write there (an unprivileged "queue
		// list") still reads an existing spool; writers find out when
		// they write.
		if fi, serr := os.Stat(dir); serr != nil || !fi.IsDir() || !errors.Is(err, fs.ErrPermission) && !errors.Is(err, syscall.EROFS) {
			return nil, fmt.Errorf("spool: %w", err)
		}
	}
	owner, shared := safefile.DirOwner(dir), false
	if owner == nil {
		owner = sharedGroup(dir)
		shared = owner != nil
	}
	if owner != nil {
		// Made by root (or a member of the group) just now, perhaps: the
		// relay moves files into it.
		q := filepath.Join(dir, quarantineDir)
		if os.Chown(q, owner.UID, owner.GID) == nil && shared {
			os.Chmod(q, 0o770)
		}
	}
	return &Spool{dir: dir, log: log, owner: owner, shared: shared, boot: cacheEpoch(dir), hot: hotTable{room: make(chan struct{}, 1)}}, nil
}

// CheckWritable reports whether this process may write in the spool
// directory, by making and removing a file there. Open lets a reader use a
// spool it may not write; a relay checks at start instead of saying
// "started" and then answering every message 451. A file system with no
// room left (no inode for the probe) is writable all the same: a relay
// that refused to start on it could never forward, and so free, the mail
// that filled it; it answers 452 to new mail until there is room.
func (s *Spool) CheckWritable() error {
	f, err := os.CreateTemp(s.dir, ".relaykeeper-probe-*")
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		s.log.Warn("spool file system full; new mail is refused until there is room", "dir", s.dir, "err", err)
		return nil
	}
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("not writable: %w", err)
	}
	f.Close()
	return os.Remove(f.Name())
}

// SetSync turns fsync on or off. Off is only for setting up benchmarks,
// where writing a hundred thousand messages durably is not what is being
// measured; every real use leaves it on.
func (s *Spool) SetSync(on bool) { s.noSync = !on }

// Dir is the spool directory.
func (s *Spool) Dir() string { return s.dir }

// newID returns a message id: eight hex digits of the time in seconds, so
// that ids sort by arrival, and eight of randomness, so that processes that
// share the spool never collide.
func (s *Spool) newID(now time.Time) string {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		// crypto/rand does not fail on Linux; fall back to a counter.
		binary.BigEndian.PutUint32(b[:], s.seq.Add(1))
	}
	return fmt.Sprintf("%08X%08X", uint32(now.Unix()), binary.BigEndian.Uint32(b[:]))
}

// NewID returns a fresh message id, for a message that passes through
// without being stored (the proxy's).
func (s *Spool) NewID(now time.Time) string { return s.newID(now) }

// ScratchDir is where the proxy puts the files of a message it passes on
// when a filter needs them: private, never fsynced, never recovered.
func (s *Spool) ScratchDir() string { return filepath.Join(s.dir, scratchDir) }

// ValidID reports whether id can name a message, so that an id from a
// command line or a network request can never name a path outside the spool.
func ValidID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for _, c := range id {
		if !(c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c == '.' || c == '-' || c == '_') {
			return false
		}
	}
	return !strings.HasPrefix(id, ".")
}

func (s *Spool) contentPath(id string) string {
	return filepath.Join(s.dir, id+".content")
}

func (s *Spool) envelopePath(id string, st State) string {
	return filepath.Join(s.dir, id+stateSuffix[st])
}

// ContentPath is the path of a message's content file, for filters and
// administrators.
func (s *Spool) ContentPath(id string) string { return s.contentPath(id) }

// EnvelopePath is the path of a message's envelope file in state st.
func (s *Spool) EnvelopePath(id string, st State) string { return s.envelopePath(id, st) }

// parseName splits a spool file name into id and kind: a State for an
// envelope, or content.
func parseName(name string) (id string, st State, isContent, ok bool) {
	if strings.HasPrefix(name, ".") {
		return "", 0, false, false
	}
	if id, found := strings.CutSuffix(name, ".content"); found && ValidID(id) {
		return id, 0, true, true
	}
	// Longest suffix first: ".envelope" is a suffix of none of the others,
	// but the others all contain it.
	for _, st := range []State{New, Claimed, Failed, Held, Ready} {
		if id, found := strings.CutSuffix(name, stateSuffix[st]); found && ValidID(id) {
			return id, st, false, true
		}
	}
	return "", 0, false, false
}

// Entry is one message as seen in a directory listing.
type Entry struct {
	ID    string
	State State
}

// List returns every message whose envelope exists, in id order (which is
// arrival order). First it writes out, if it now can, what the replay at
// start could not (retryReplay): the scheduler lists at every scan, also
// in a daemon whose journal could not be opened (a full disk at start).
func (s *Spool) List() ([]Entry, error) {
	s.retryReplay()
	des, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrPermission) {
		return nil, s.denied(err)
	}
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	var out []Entry
	for _, de := range des {
		id, st, isContent, ok := parseName(de.Name())
		if !ok || isContent {
			continue
		}
		out = append(out, Entry{ID: id, State: st})
	}
	// ReadDir sorts by file name, and ids of one length sort as names do.
	if served := s.servedEntries(); len(served) > 0 {
		out = mergeEntries(out, served)
	}
	return out, nil
}

// mergeEntries merges two lists in id order; an id in both (written out
// between the two looks) is listed once, as its file says.
func mergeEntries(files, served []Entry) []Entry {
	out := make([]Entry, 0, len(files)+len(served))
	i, j := 0, 0
	for i < len(files) || j < len(served) {
		switch {
		case j == len(served) || i < len(files) && files[i].ID < served[j].ID:
			out = append(out, files[i])
			i++
		case i == len(files) || served[j].ID < files[i].ID:
			out = append(out, served[j])
			j++
		default:
			out = append(out, files[i])
			i, j = i+1, j+1
		}
	}
	return out
}

// find returns the state a message's envelope is in now.
func (s *Spool) find(id string) (State, error) {
	if !ValidID(id) {
		return 0, ErrNotFound
	}
	if _, st, ok, _ := s.readServed(id); ok {
		return st, nil
	}
	for _, st := range []State{Ready, Claimed, Failed, Held, New} {
		_, err := os.Lstat(s.envelopePath(id, st))
		if err == nil {
			return st, nil
		}
		if errors.Is(err, fs.ErrPermission) {
			// Not "no such message": the message may well be
			// there, and an administrator told so takes it for
			// delivered.
			return 0, s.denied(err)
		}
	}
	return 0, ErrNotFound
}

// denied words a permission error on the spool directory for whoever met
// it: the spool is the relay's own (0750), so an ordinary user's mailq or
// "relaykeeper queue" may not look in.
func (s *Spool) denied(err error) error {
	return fmt.Errorf("spool: %s is the relay's own: run this as root or as the user the relay runs as: %w", s.dir, err)
}

// startReceipt and endReceipt mark a Writer's id as being received by this
// process (Spool.receiving).
func (s *Spool) startReceipt(id string) {
	s.receiving.mu.Lock()
	defer s.receiving.mu.Unlock()
	if s.receiving.ids == nil {
		s.receiving.ids = map[string]bool{}
	}
	s.receiving.ids[id] = true
}

func (s *Spool) endReceipt(id string) {
	s.receiving.mu.Lock()
	defer s.receiving.mu.Unlock()
	delete(s.receiving.ids, id)
}

// inReceipt reports whether this process is receiving id now.
func (s *Spool) inReceipt(id string) bool {
	s.receiving.mu.Lock()
	defer s.receiving.mu.Unlock()
	return s.receiving.ids[id]
}

// Room reports whether the spool's file system has room for a message of
// size octets, as a client declares it with MAIL's SIZE: half as much
// again free, as Postfix's smtpd asks, for the envelope, the journal's
// record and the files a checkpoint writes. Unknown is room: the writes
// will tell.
func (s *Spool) Room(size uint64) bool {
	var st unix.Statfs_t
	if unix.Statfs(s.dir, &st) != nil || st.Blocks == 0 {
		// A file system that gives no size (some FUSE ones) is not
		// full: every client that declares a size would be refused.
		return true
	}
	free := st.Bavail * uint64(st.Bsize)
	return size <= free/3*2
}
