package enforce

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

// watched is a file read again when it changes (another inode, size or
// mtime), as the welcomelist is: looked at no more often than every
// checkEvery when the value is used, and at once by Reload (SIGHUP). A
// version with a bad line leaves the one in force and its error is kept, to
// be said once by whoever reloads, until the file changes again. An
// administrator's edit of the rules file or the reply filter is in force
// within seconds, without a restart, as an edit of the welcomelist is.
type watched[T any] struct {
	what       string // "rules", for the errors of reading
	path       string
	devices    bool // a character device (/dev/null) reads as the file
	parse      func(name string, data []byte) (T, error)
	now        func() time.Time
	sleep      func(time.Duration)
	checkEvery time.Duration
	// settle is how long a new version must have been left alone
	// before it is put in force (see settled).
	settle time.Duration

	// report, if set, hears of each new version read: err nil when it is
	// in force, else why the old one stays. Set before the value is used.
	report func(path string, err error)

	mu                 sync.Mutex
	cur                T
	version, failedVer os.FileInfo
	failedErr          error
	checked            time.Time
}

// openWatched reads path with parse; an error there is the caller's to
// refuse the start with. With devices, a character device (/dev/null) is
// read as a file is.
func openWatched[T any](what, path string, devices bool, parse func(string, []byte) (T, error)) (*watched[T], error) {
	w := &watched[T]{what: what, path: path, devices: devices, parse: parse, now: time.Now, sleep: time.Sleep,
		checkEvery: welcomeCheckEvery, settle: settleTime}
	v, fi, err := w.load()
	if err != nil {
		return nil, err
	}
	w.cur, w.version, w.checked = v, fi, w.now()
	return w, nil
}

// get is the value in force, after a look at the file if one is due.
func (w *watched[T]) get() T {
	w.mu.Lock()
	due := w.now().Sub(w.checked) >= w.checkEvery || w.now().Before(w.checked)
	w.mu.Unlock()
	if due {
		w.reload(false) // a bad version's error waits for the next SIGHUP's caller
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur
}

// settleTime is how long a new version of a watched file must have been
// left alone (its modification time that far behind the clock, and no
// change while it is read) before it is put in force. A writer that
// truncates the file and then writes it ("cat >", tee, an editor that
// keeps the inode, a configuration tool writing line by line) shows a
// shorter file for a moment: read then, a welcomelist without its last
// lines took those clients' exemption away, and a refusal of their mail
// banned them. The writers that do this write the whole file within
// milliseconds; one slower than settleTime (a person typing into
// "cat >") is not told from an edit, but its file is whole once it ends.
const settleTime = time.Second

// maxSettleWaits bounds how often Reload waits for a file that keeps
// changing (a writer still going): then it leaves the version in force,
// and the next look tries again.
const maxSettleWaits = 3

// settled reports how long to wait before fi, a version of the file, has
// been left alone for w.settle; 0 when it has. A modification time in the
// future (a clock set back, a touch -d) is taken as settled, or such a
// file would never be read.
func (w *watched[T]) settled(fi os.FileInfo) time.Duration {
	age := w.now().Sub(fi.ModTime())
	if age < 0 || age >= w.settle {
		return 0
	}
	return w.settle - age
}

// Reload reads the file again if it changed, and reports whether a new
// version is in force; with a bad line the old one stays and the error
// (FILE:LINE: ...) is returned on each call until the file changes. A
// version changed less than settleTime ago is waited for (a SIGHUP right
// after an edit puts the edit in force).
func (w *watched[T]) Reload() (changed bool, err error) { return w.reload(true) }

// reload is Reload; without wait, a version not yet settled is left for
// a later look (the value's users do not wait on a writer).
func (w *watched[T]) reload(wait bool) (changed bool, err error) {
	for i := 0; ; i++ {
		w.mu.Lock()
		changed, again, err := w.reloadOnce()
		w.mu.Unlock()
		if again == 0 {
			return changed, err
		}
		if !wait || i == maxSettleWaits {
			return false, nil
		}
		w.sleep(again) // without the lock: the value in force stays usable
	}
}

// reloadOnce is one look at the file; again, if not 0, is how long to
// wait for a new version to settle, as nothing was read.
func (w *watched[T]) reloadOnce() (changed bool, again time.Duration, err error) {
	w.checked = w.now()
	fi, err := os.Stat(w.path)
	if err != nil {
		// Removed, or a dangling link: said once, the version read
		// before stays.
		return false, 0, w.refuse(nil, fmt.Errorf("enforce: %s: %w", w.what, err))
	}
	if sameFileVersion(fi, w.version) {
		if w.failedErr != nil && w.failedVer == nil {
			// Back after it could not be looked at (moved away and
			// back): the refusal said is over.
			w.failedErr = nil
			if w.report != nil {
				w.report(w.path, nil)
			}
		}
		return false, 0, nil
	}
	if w.failedVer != nil && sameFileVersion(fi, w.failedVer) {
		return false, 0, w.failedErr
	}
	if d := w.settled(fi); d > 0 {
		return false, d, nil
	}
	v, fi, err := w.load()
	if fi != nil {
		// Changed while it was read: a writer is at work.
		if after, err := os.Stat(w.path); err == nil && !sameFileVersion(fi, after) {
			return false, w.settle, nil
		}
	}
	if err != nil {
		return false, 0, w.refuse(fi, err)
	}
	w.cur, w.version, w.failedVer, w.failedErr = v, fi, nil, nil
	if w.report != nil {
		w.report(w.path, nil)
	}
	return true, 0, nil
}

// refuse keeps err, why the version fi (nil: a file not looked at or not
// opened) is not in force, and says it once: a file not opened (no read
// permission, a socket there) or gone is tried again at each look, as a
// chmod does not change its version, but the same error is not said again.
func (w *watched[T]) refuse(fi os.FileInfo, err error) error {
	again := fi == nil && w.failedErr != nil && w.failedErr.Error() == err.Error()
	w.failedVer, w.failedErr = fi, err
	if w.report != nil && !again {
		w.report(w.path, err)
	}
	return err
}

// load reads and parses the file; fi is the version read, also when it
// does not parse. A parse error is parse's own (FILE:LINE: ...).
func (w *watched[T]) load() (v T, fi os.FileInfo, err error) {
	data, fi, err := readWatched(w.what, w.path, w.devices)
	if err != nil {
		return v, fi, err
	}
	v, err = w.parse(w.path, data)
	return v, fi, err
}

// readWatched reads path, which must be a regular file (or, with devices,
// a character device: /dev/null, an empty list) of at most maxWatchedFile
// octets; fi is the version read (nil when it could not be opened). The
// open never waits: a named pipe there, which would wait for a writer with
// the file's lock held, is refused (safefile.Open).
func readWatched(what, path string, devices bool) (data []byte, fi os.FileInfo, err error) {
	f, err := safefile.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("enforce: %s: %w", what, err)
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, nil, fmt.Errorf("enforce: %s: %w", what, err)
	}
	if m := fi.Mode(); !m.IsRegular() && !(devices && m&os.ModeCharDevice != 0) {
		return nil, fi, fmt.Errorf("enforce: %s: %s is not a regular file", what, path)
	}
	data, err = io.ReadAll(io.LimitReader(f, maxWatchedFile+1))
	if err != nil {
		return nil, fi, fmt.Errorf("enforce: %s: %w", what, err)
	}
	if len(data) > maxWatchedFile {
		return nil, fi, fmt.Errorf("enforce: %s: %s is larger than %d octets", what, path, maxWatchedFile)
	}
	return data, fi, nil
}

// maxWatchedFile bounds what a rules file, reply filter or welcomelist may hold: a
// mistaken path (a log file) must not take the relay's memory.
const maxWatchedFile = 16 << 20

// WatchPolicyFiles has p's rules file and reply filter (those read from a
// file) say in log when an edit is put in force, or refused with its
// FILE:LINE and the old version kept. Call it before p is used.
func WatchPolicyFiles(p Policy, log *slog.Logger) {
	report := func(what string) func(string, error) {
		return func(path string, err error) {
			if err != nil {
				log.Error(what+" not re-read; the version read before stays in force", "file", path, "err", err)
				return
			}
			log.Info(what+" re-read", "file", path)
		}
	}
	if p.Rules != nil && p.Rules.file != nil {
		p.Rules.file.report = report("enforcement rules")
	}
	if p.Filter != nil && p.Filter.file != nil {
		p.Filter.file.report = report("reply filter")
	}
}

// ReloadPolicyFiles reads p's rules file and reply filter again now if
// they changed (SIGHUP); WatchPolicyFiles's log says how it went.
func ReloadPolicyFiles(p Policy) {
	p.Rules.Reload()
	p.Filter.Reload()
}

// ReloadFiles is ReloadPolicyFiles for the enforcer's policy: on the
// relay's table timer, so that an edit is said to be in force (or refused)
// within seconds, not at the next refusal, and on SIGHUP. A nil Enforcer
// (enforcement off) has none.
func (e *Enforcer) ReloadFiles() {
	if e != nil {
		ReloadPolicyFiles(e.Policy)
	}
}
