package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// A client filter (E-MailRelay's --client-filter) may rewrite a queued
// message's content in place, truncating the file and writing it again.
// The message was acknowledged long before: a power loss while the filter
// writes would leave its content empty or cut short, with no other copy
// (its journal record, if it had one, is retired a second after its 250).
// So while a client filter runs, the content as it was is kept beside it,
// synced: ".ID.content.guard". Relock, after the filter, syncs the content
// the filter left and removes the copy; a removal of the message removes
// it too. Recovery finds a copy only where a filter's run did not end
// cleanly, and puts it back over the content: the message as accepted,
// which the filter will see again at the next attempt.
const guardSuffix = ".content.guard"

func (s *Spool) guardPath(id string) string {
	return filepath.Join(s.dir, "."+id+guardSuffix)
}

// guardName returns the message id of a guard's file name (or of its
// temporary file), if name is one.
func guardName(name string) (string, bool) {
	rest, ok := strings.CutPrefix(name, ".")
	if !ok {
		return "", false
	}
	rest = strings.TrimSuffix(rest, ".tmp")
	id, ok := strings.CutSuffix(rest, guardSuffix)
	return id, ok && ValidID(id)
}

// GuardContent keeps a synced copy of the claimed message's content while
// a client filter runs (see above). A copy already there is kept: it is
// the content as it was before a filter run that did not end cleanly.
func (c *Claim) GuardContent() error {
	if err := c.files(); err != nil {
		return err
	}
	path := c.s.guardPath(c.id)
	if _, err := os.Lstat(path); err == nil {
		return nil
	}
	fi, err := c.lock.Stat()
	if err != nil {
		return fmt.Errorf("spool: guard %s: %w", c.id, err)
	}
	tmp := path + ".tmp"
	f, err := openFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("spool: guard %s: %w", c.id, err)
	}
	c.s.chown(f)
	_, err = io.Copy(f, io.NewSectionReader(c.lock, 0, fi.Size()))
	if err == nil {
		err = c.s.syncFile(f)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = rename(tmp, path)
	}
	if err == nil {
		err = c.s.syncDir()
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("spool: guard %s: %w", c.id, err)
	}
	return nil
}

// restoreGuards puts back the content a client filter's interrupted run
// may have damaged (see above), for every guard in names whose message
// nobody holds, and removes the guards of messages that are gone.
func (s *Spool) restoreGuards(names []string) {
	for _, name := range names {
		id, _ := guardName(name)
		lock, err := s.lockContent(id)
		if errors.Is(err, ErrBusy) {
			continue // a filter is running now
		}
		switch {
		case strings.HasSuffix(name, ".tmp"):
			if err == nil || errors.Is(err, ErrNotFound) {
				os.Remove(filepath.Join(s.dir, name)) // a copy never finished
			}
		case errors.Is(err, ErrNotFound) && len(s.states(id)) == 0:
			os.Remove(filepath.Join(s.dir, name)) // the message is gone
		case err == nil || errors.Is(err, ErrNotFound):
			s.putBackGuard(id)
		}
		if lock != nil {
			lock.Close()
		}
	}
}

// putBackGuard puts a guard's copy back over the content of message id,
// whose content lock the caller holds (or which has no content file), and
// reports whether there was one: the lock is then on a file no longer the
// message's.
func (s *Spool) putBackGuard(id string) bool {
	path := s.guardPath(id)
	if !s.guarded(id) {
		return false
	}
	if err := rename(path, s.contentPath(id)); err != nil {
		s.log.Error("spool: the content kept while a client filter ran cannot be put back", "id", id, "err", err)
		return false
	}
	s.log.Warn("spool: a client filter's run was cut short; the message's content is put back as it was before it", "id", id)
	return true
}

// envelopeIn says whether message id has its envelope in state st.
func (s *Spool) envelopeIn(id string, st State) bool {
	_, err := os.Lstat(s.envelopePath(id, st))
	return err == nil
}

// guarded says whether message id has a guard (see above).
func (s *Spool) guarded(id string) bool {
	_, err := os.Lstat(s.guardPath(id))
	return err == nil
}

// filterTempSuffix ends the temporary file E-MailRelay's guide has its
// filter scripts write beside the content they replace ("$1.tmp", then
// mv over "$1"). A filter killed between the two (with the relay, by a
// kill -9: command.Run's Pdeathsig) leaves it behind.
const filterTempSuffix = ".content.tmp"

// filterTempName returns the message id of a filter's temporary file
// (above), if name is one and the id is one this spool or E-MailRelay
// gives a message: other programs sharing the directory keep theirs.
func filterTempName(name string) (string, bool) {
	id, ok := strings.CutSuffix(name, filterTempSuffix)
	return id, ok && !strings.HasPrefix(name, ".") && spoolID(id)
}

// removeFilterTemps removes, from names, the filters' temporary files
// (above) that no filter can be writing: their message's content is
// there and nobody holds it, or the message is gone. A filter runs while
// its message is held (the receipt's or the claim's lock) or, after it
// renamed a new content into place, while it is in receipt here.
func (s *Spool) removeFilterTemps(names []string) {
	for _, name := range names {
		id, _ := filterTempName(name)
		if s.inReceipt(id) {
			continue
		}
		lock, err := s.lockContent(id)
		switch {
		case err == nil, errors.Is(err, ErrNotFound) && len(s.states(id)) == 0:
			os.Remove(filepath.Join(s.dir, name))
			s.log.Warn("spool: a filter's temporary file, left by a run that did not end, is removed", "file", name)
		}
		if lock != nil {
			lock.Close()
		}
	}
}
