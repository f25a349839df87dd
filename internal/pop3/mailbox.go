package pop3

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// lockName is the mailbox lock file. Its leading dot keeps it out of the
// spool's listings and out of Recover's sight.
const lockName = ".relaykeeper-pop3.lock"

// Mailbox errors. errInUse and errBadMailbox become distinct replies; the
// others are "-ERR [SYS/TEMP]".
var (
	errInUse      = errors.New("pop3: mailbox locked by another session")
	errBadMailbox = errors.New("pop3: user name cannot name a mailbox")
)

// validUserName reports whether name may be used as a directory name under
// the spool (--pop-by-name). Anything that could climb out of the spool or
// name a hidden entry of it (.quarantine, the lock and pid files) is
// refused: a '/' or '\', "..", a leading '.', NUL and other control
// characters.
func validUserName(name string) bool {
	if name == "" || len(name) > 255 || name[0] == '.' ||
		strings.Contains(name, "..") || strings.ContainsAny(name, `/\`) {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c < ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// mailboxDir returns the directory served to user: the spool itself, or
// with byName SPOOL/USER, created if missing. The final path, symbolic
// links resolved, must be a directory strictly inside the spool, so that
// neither the name nor a link planted in the spool leads elsewhere.
func mailboxDir(spoolDir string, byName bool, user string) (string, error) {
	root, err := filepath.Abs(spoolDir)
	if err == nil {
		root, err = filepath.EvalSymlinks(root)
	}
	if err != nil {
		return "", fmt.Errorf("pop3: spool directory: %w", err)
	}
	if !byName {
		return root, nil
	}
	if !validUserName(user) {
		return "", errBadMailbox
	}
	dir := filepath.Join(root, user)
	if filepath.Dir(dir) != root {
		return "", errBadMailbox // unreachable after validUserName; kept as a guard
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("pop3: create mailbox: %w", err)
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("pop3: mailbox: %w", err)
	}
	rel, err := filepath.Rel(root, real)
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || filepath.IsAbs(rel) {
		return "", fmt.Errorf("%w: %s leads outside the spool", errBadMailbox, dir)
	}
	if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
		return "", fmt.Errorf("%w: %s is not a directory", errBadMailbox, dir)
	}
	return real, nil
}

// message is one message of a session's maildrop. Message numbers are
// positions in mailbox.msgs plus one, fixed for the session (RFC 1939).
type message struct {
	id      string
	uid     string
	size    int64
	deleted bool
}

// mailbox is a maildrop held by one session: a spool directory, locked
// against other sessions, and the messages it had at login.
type mailbox struct {
	sp   *spool.Spool
	lock *os.File
	msgs []message
}

// openMailbox locks dir and lists its messages: every envelope in state
// Ready (ID.envelope) whose ID.content is a regular file, with its size as
// RETR sends it (sz). Messages being received, delivered, held or failed
// are not served.
func openMailbox(dir string, log *slog.Logger, sz *sizes) (*mailbox, error) {
	// O_NOFOLLOW: a link planted under the lock file's name must not make
	// us create or lock a file elsewhere.
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return nil, fmt.Errorf("pop3: mailbox lock: %w", err)
	}
	// flock locks belong to the open file description, so two sessions of
	// this process exclude each other just as two processes do.
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, errInUse
		}
		return nil, fmt.Errorf("pop3: mailbox lock: %w", err)
	}
	sp, err := spool.Open(dir, log)
	if err != nil {
		f.Close()
		return nil, err
	}
	entries, err := sp.List()
	if err != nil {
		f.Close()
		return nil, err
	}
	m := &mailbox{sp: sp, lock: f}
	for _, e := range entries {
		if e.State != spool.Ready {
			continue
		}
		size, err := sz.octets(sp, e.ID)
		if err != nil {
			continue // delivered meanwhile, or torn: Recover's business
		}
		m.msgs = append(m.msgs, message{id: e.ID, uid: uidFor(e.ID), size: size})
	}
	return m, nil
}

// uidFor returns a message's UIDL: its id, which is unique and never
// reused, when it fits RFC 1939's 1 to 70 characters in 0x21-0x7E (spool
// ids always use that range); otherwise a digest of it.
func uidFor(id string) string {
	if len(id) <= 70 {
		return id
	}
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// stat returns the number and total size of the messages not marked deleted.
func (m *mailbox) stat() (n int, size int64) {
	for _, msg := range m.msgs {
		if !msg.deleted {
			n++
			size += msg.size
		}
	}
	return n, size
}

// commit removes the messages marked deleted (the UPDATE state of RFC 1939
// section 6), each through the spool's lock, and calls deleted with each
// id it removed: a message a forwarder or an administrator holds is left
// alone and counted in kept. One that is gone already counts as removed.
func (m *mailbox) commit(log *slog.Logger, deleted func(id string)) (removed, kept int) {
	for _, msg := range m.msgs {
		if !msg.deleted {
			continue
		}
		c, err := m.sp.Lock(msg.id)
		switch {
		case errors.Is(err, spool.ErrNotFound):
			removed++
			continue
		case errors.Is(err, spool.ErrBusy):
			log.Warn("pop3: message in use, not deleted", "id", msg.id)
			kept++
			continue
		case err != nil:
			log.Error("pop3: cannot delete message", "id", msg.id, "err", err)
			kept++
			continue
		}
		if err := c.Delete(); err != nil {
			log.Error("pop3: cannot delete message", "id", msg.id, "err", err)
			kept++
			continue
		}
		log.Info("pop3: message deleted", "id", msg.id)
		deleted(msg.id)
		removed++
	}
	return removed, kept
}

// close releases the mailbox lock.
func (m *mailbox) close() error { return m.lock.Close() }
