package spool

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// retire writes out the served messages recorded in the old segments (up
// to num), makes the spool durable, and removes those segments. If the
// files cannot be written, the segments stay for the next checkpoint, or
// for replay after a crash.
func (j *Journal) retire(num uint64) error {
	if j.keep.Load() {
		// The segments stay whatever this does.
		err := j.s.writeOutAll(num)
		if !j.lost.Load() {
			return errJournalKept
		}
		if err == nil {
			// No segment a restart reads: the files must be durable.
			if err = j.s.syncFSOn(j.fsDir); err != nil {
				j.s.log.Error("spool: syncing the messages written out from a lost journal failed", "err", err)
			}
		}
		return err
	}
	if err := j.s.writeOutAll(num); err != nil {
		return err
	}
	if err := j.s.syncFSOn(j.fsDir); err != nil {
		j.markUnsynced(err)
		return err
	}
	var kept []oldSegment
	var rerr error
	for _, o := range j.old {
		// Removed while still locked, so that no other process's replay
		// finds it unlocked under its name (replay skips a segment it
		// locks after its removal). One that cannot be removed stays
		// locked, for the next checkpoint: closed, it would look like
		// the journal of a relay that died, and its replay would bring
		// back messages delivered since, whose removal is noted in a
		// later segment (delivered again, once for every replay).
		// The later segments stay with it: they note the removals that
		// a replay of it must see.
		name := filepath.Join(j.dir, fmt.Sprintf("%020d.log", o.num))
		if rerr != nil {
			kept = append(kept, o)
			continue
		}
		if err := removeSegment(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			kept = append(kept, o)
			rerr = cmp.Or(rerr, fmt.Errorf("spool: removing a written-out journal segment: %w", err))
			continue
		}
		o.f.Close()
	}
	j.old = kept
	j.mu.Lock()
	j.oldServed = usage{}
	j.mu.Unlock()
	if rerr != nil && len(kept) >= maxKeptSegments {
		// A removal that keeps failing (an immutable file, a
		// directory made read-only) would keep one more segment open
		// at every checkpoint, a descriptor a second, until none are
		// left. The kept segments are consistent (every later one is
		// kept with them) and stay for the next start's replay.
		j.stopGroupCommit("spool: journal segments cannot be removed; group commit is off, and the journal is kept until the next start", rerr)
	}
	return rerr
}

// maxKeptSegments bounds the written-out segments kept open because their
// removal failed: past it, group commit stops (retire).
const maxKeptSegments = 16

// removeSegment removes a journal segment's file; tests replace it.
var removeSegment = os.Remove
