package postfixlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// A Follower reads a log file as "tail -F" does, and remembers how far it
// has read so that a restarted one goes on where the last one stopped.
//
// Invariants and failure behaviour:
//
//   - A line is handed to the callback once it is complete (it ends with a
//     newline); a final line without one is handed on only when its file
//     has been rotated away, since nothing more will be written to it.
//   - The state file is saved only after the callback has returned for
//     each line it covers: after a batch of lines (everything one read
//     returned) in which the caller did something it must not do twice
//     (Unsaved), otherwise at most every SaveEvery while lines come, and at
//     the end of the file, after a rotation and when Run returns. After a
//     crash the lines read since the last save (at most SaveEvery's, none
//     that Unsaved reported) may be handed on again; none is skipped. A
//     caller that must not act twice records what it did in the same state
//     (Checkpoint) and reports it with Unsaved. Saving after every batch
//     wrote the whole state, megabytes with a queue of deferred messages,
//     for each 64 KiB of a log read at once.
//   - Rotation by rename (the path now names another file): the old file is
//     read to its end, then the new one from its start. Rotation by copying
//     and truncating (copytruncate: the file shrinks below the offset, or
//     its last read line has changed): what was not yet read is taken from
//     the copy, found next to the log by the hash of the last line read, and
//     the log is read again from its start. The same two checks are made
//     when a Follower starts from a saved state.
//   - A missing file is waited for. The file is polled (Poll), not watched:
//     no inotify, so it works on any file system.
type Follower struct {
	// Path is the log file.
	Path string
	// State is the state file; "" keeps no state.
	State string
	// ReadOnly reads State at the start but never writes it (a dry run).
	ReadOnly bool
	// Poll is how often the file is checked at its end; default 250ms.
	Poll time.Duration
	// Once stops at the end of the file instead of waiting for more.
	Once bool
	// FromEnd starts, when State holds no position, at the end of the file
	// rather than at its beginning.
	FromEnd bool
	// Checkpoint, if set, returns the caller's data to save with each
	// position; LoadState returns it as State.App.
	Checkpoint func() ([]byte, error)
	// AtEOF, if set, is called each time the end of the file is reached,
	// with final set when Once is about to return; if it reports a change
	// (it acted on something), the state is saved again.
	AtEOF func(final bool) (changed bool, err error)
	// Unsaved, if set, reports whether the caller did something since its
	// last Checkpoint that must not be done again after a crash: the state
	// is then saved after the batch of lines.
	Unsaved func() bool
	// SaveEvery is how long at most the state goes unsaved while lines
	// are read; default 2s.
	SaveEvery time.Duration
	// Logf tells about rotations, truncations and lines that may have been
	// lost; nil discards.
	Logf func(format string, args ...any)

	saved   Position  // the position last saved
	savedAt time.Time // when
}

// Follow follows path with the state file state until ctx ends (when it
// returns ctx's error) or fn fails (when it returns fn's error). See
// Follower.
func Follow(ctx context.Context, path, state string, fn func(line string) error) error {
	f := &Follower{Path: path, State: state}
	return f.Run(ctx, fn)
}

// maxLine bounds a line; of a longer one only the first maxLine bytes are
// handed on. The rest is dropped: handed on as a line of its own, it would
// start wherever the writer's text happened to be at that offset, and a
// client could shape it as a whole log line.
const maxLine = 1 << 20

// cursor is an open log file and how far it has been handed on.
type cursor struct {
	f        *os.File
	dev, ino uint64
	pos      Position
	buf      []byte // bytes read past pos.Offset, not yet a whole line
	// rest: the last piece handed on was the first maxLine bytes of a
	// longer line; what follows up to the next newline is dropped.
	rest bool
}

func (f *Follower) logf(format string, args ...any) {
	if f.Logf != nil {
		f.Logf(format, args...)
	}
}

// Run follows the file, calling fn for each line (without its newline).
func (f *Follower) Run(ctx context.Context, fn func(line string) error) error {
	poll := f.Poll
	if poll <= 0 {
		poll = 250 * time.Millisecond
	}
	var saved Position
	if f.State != "" {
		st, err := LoadState(f.State)
		if err != nil {
			return err
		}
		saved = st.Position
	}
	fresh := saved == (Position{})

	var c *cursor
	defer func() {
		if c != nil {
			c.f.Close()
		}
	}()
	for c == nil {
		var err error
		c, err = open(f.Path)
		if errors.Is(err, fs.ErrNotExist) {
			if f.Once {
				return fmt.Errorf("postfixlog: %w", err)
			}
			if err := sleep(ctx, poll); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("postfixlog: %w", err)
		}
	}
	switch {
	case fresh && f.FromEnd:
		size, err := c.size()
		if err != nil {
			return err
		}
		// Start after the last complete line.
		c.pos = positionAt(c.f, lastLineStart(c.f, size))
		c.pos.Dev, c.pos.Inode = c.dev, c.ino
	case fresh:
	case saved.Dev == c.dev && saved.Inode == c.ino && c.holds(saved):
		c.pos = saved
	default:
		// Rotated or truncated while nobody was reading: finish the old
		// file, wherever it is now, then read this one from the start.
		split, _, err := f.recover(ctx, saved, fn)
		if err != nil {
			return err
		}
		c.rest = split
	}
	if err := f.save(c.pos); err != nil {
		return err
	}

	for {
		// Truncated (copytruncate), or truncated and grown again past the
		// offset? Checked before reading, so that new content is never read
		// from the old offset.
		size, err := c.size()
		if err != nil {
			return err
		}
		if size < c.pos.Offset+int64(len(c.buf)) || !c.holds(c.pos) {
			f.logf("%s: truncated at offset %d; reading it again from the start", f.Path, c.pos.Offset)
			// The old content ended in the middle of a line (seen here, or
			// in the copy): its tail, written after the truncation, starts
			// the file.
			split, found, err := f.recover(ctx, c.pos, fn)
			if err != nil {
				return err
			}
			if !found {
				split = len(c.buf) > 0 // its rest may follow: not a line
			}
			c.reset()
			c.rest = split
			if err := f.save(c.pos); err != nil {
				return err
			}
			continue
		}
		if size > c.pos.Offset+int64(len(c.buf)) {
			if _, err := f.readLines(ctx, c, fn); err != nil {
				return err
			}
			continue
		}
		// At the end of the file: has it been replaced?
		fi, err := os.Stat(f.Path)
		if err == nil {
			dev, ino := fileID(fi)
			if dev != c.dev || ino != c.ino {
				// Replaced: whatever was written to the old file before the
				// switch is read first.
				if _, err := f.readLines(ctx, c, fn); err != nil {
					return err
				}
				if err := f.flushPartial(c, fn); err != nil {
					return err
				}
				next, err := open(f.Path)
				if err != nil {
					continue // gone again; try at the next poll
				}
				f.logf("%s: rotated; reading the new file from the start", f.Path)
				c.f.Close()
				c = next
				if err := f.save(c.pos); err != nil {
					return err
				}
				continue
			}
		}
		if f.AtEOF != nil {
			changed, err := f.AtEOF(f.Once)
			if err != nil {
				return err
			}
			if changed {
				if err := f.save(c.pos); err != nil {
					return err
				}
			}
		}
		// At the end: what was read is saved, at most every SaveEvery
		// while following, and before Run returns.
		if f.Once || time.Since(f.savedAt) >= f.saveEvery() {
			if err := f.saveIfMoved(c.pos); err != nil {
				return err
			}
		}
		if f.Once {
			return nil
		}
		if err := sleep(ctx, poll); err != nil {
			if serr := f.saveIfMoved(c.pos); serr != nil {
				return serr
			}
			return err
		}
	}
}

func (f *Follower) saveEvery() time.Duration {
	if f.SaveEvery > 0 {
		return f.SaveEvery
	}
	return 2 * time.Second
}

// saveIfMoved saves pos unless it is the position saved last.
func (f *Follower) saveIfMoved(pos Position) error {
	if pos == f.saved {
		return nil
	}
	return f.save(pos)
}

// readLines reads what the file holds past the cursor and hands on every
// complete line, saving the position after a batch when it is due. It
// returns the number of bytes read. It stops between two batches when ctx
// ends, having saved the position: a long log read at once must not hold
// up a stop (SIGTERM) until its end.
func (f *Follower) readLines(ctx context.Context, c *cursor, fn func(string) error) (int, error) {
	total := 0
	chunk := make([]byte, 64<<10)
	for {
		n, err := c.f.ReadAt(chunk, c.pos.Offset+int64(len(c.buf)))
		if n > 0 {
			total += n
			c.buf = append(c.buf, chunk[:n]...)
			handed, herr := f.handLines(c, fn, false)
			due := herr != nil || time.Since(f.savedAt) >= f.saveEvery() || f.Unsaved != nil && f.Unsaved()
			if handed > 0 && due {
				if err := f.save(c.pos); err != nil {
					return total, err
				}
			}
			if herr != nil {
				return total, herr
			}
		}
		if cerr := ctx.Err(); cerr != nil {
			if err := f.saveIfMoved(c.pos); err != nil {
				return total, err
			}
			return total, cerr
		}
		if err == io.EOF || n == 0 {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("postfixlog: %w", err)
		}
	}
}

// handLines hands on the complete lines in c.buf (and, if final, the rest)
// and advances the position past each one after fn returns.
func (f *Follower) handLines(c *cursor, fn func(string) error, final bool) (int, error) {
	handed := 0
	for len(c.buf) > 0 {
		if !c.rest && c.buf[0] == 0 {
			// Zeros where a line starts are the disk's (see afterZeros),
			// however many: a writer that does not append leaves the
			// old file's size of them after copytruncate. They are
			// skipped, not read as an overlong line whose tail, the
			// whole line after them, would be dropped.
			n := len(c.buf) - len(bytes.TrimLeft(c.buf, "\x00"))
			handed++
			c.pos.Offset += int64(n)
			c.pos.LineLen = int64(n)
			c.pos.LineHash = lineHash(c.buf[:n])
			c.buf = c.buf[n:]
			continue
		}
		i := bytes.IndexByte(c.buf, '\n')
		var line []byte
		var n int
		switch {
		case i >= 0:
			line, n = c.buf[:i], i+1
		case len(c.buf) >= maxLine, final:
			line, n = c.buf, len(c.buf)
		default:
			return handed, nil
		}
		switch {
		case c.rest:
			// The tail of an overlong line.
			c.rest = i < 0
		default:
			if err := fn(strings.TrimSuffix(string(line), "\r")); err != nil {
				return handed, err
			}
			c.rest = i < 0 && !final
		}
		handed++
		c.pos.Offset += int64(n)
		c.pos.LineLen = int64(n)
		c.pos.LineHash = lineHash(c.buf[:n])
		c.buf = c.buf[n:]
	}
	return handed, nil
}

// flushPartial hands on a final line without a newline.
func (f *Follower) flushPartial(c *cursor, fn func(string) error) error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := f.handLines(c, fn, true)
	return err
}

// recover finishes reading the file that old describes, now rotated (found
// by its inode) or copied (found by the hash of its last read line) next to
// the log, before the log is read again from its start. split reports a
// copy that ends in the middle of a line: the writer wrote the rest after
// copytruncate's truncation, at the start of the log, where it must not be
// read as a line of its own (it starts wherever the writer's text was at
// the cut, and a client could shape it as a whole log line). found
// reports that the old file was found.
func (f *Follower) recover(ctx context.Context, old Position, fn func(string) error) (split, found bool, err error) {
	if old.Offset == 0 && old.Inode == 0 {
		return false, false, nil
	}
	rc, ok := f.findOld(old)
	if !ok {
		f.logf("%s: the file read up to offset %d is gone; lines written to it after that may have been missed", f.Path, old.Offset)
		return false, false, nil
	}
	defer rc.f.Close()
	f.logf("%s: reading the rest of the rotated file %s from offset %d", f.Path, rc.f.Name(), old.Offset)
	rc.pos = old
	// The positions in the rotated file are saved as in the live log: a
	// stop or a crash now resumes here (findOld finds the file again by
	// its inode or its last line), and what the callback did for the lines
	// read (Checkpoint) is kept with them. Unsaved, a stop (SIGTERM)
	// between two reads lost it, and the next start did it all again.
	if _, err := f.readLines(ctx, rc, fn); err != nil {
		return false, true, err
	}
	// A renamed file keeps the writer's rest: only a copy's is elsewhere.
	split = len(rc.buf) > 0 && (rc.dev != old.Dev || rc.ino != old.Inode)
	if split {
		f.logf("%s: the copy %s ends in the middle of a line; the first line of the log, its rest, is skipped", f.Path, rc.f.Name())
	}
	return split, true, f.flushPartial(rc, fn)
}

// findOld looks next to the log for the file that old describes: the same
// inode (renamed), or, failing that, a file whose line ending at old.Offset
// is the one last read (a copytruncate copy). Compressed files are not
// read.
func (f *Follower) findOld(old Position) (*cursor, bool) {
	dir, base := filepath.Split(f.Path)
	if dir == "" {
		dir = "."
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, false
	}
	type cand struct {
		name  string
		mtime time.Time
	}
	var cands []cand
	for _, e := range entries {
		n := e.Name()
		if n == base || !strings.HasPrefix(n, base) || !e.Type().IsRegular() {
			continue
		}
		switch filepath.Ext(n) {
		case ".gz", ".bz2", ".xz", ".zst", ".lz4", ".Z":
			continue
		}
		if fi, err := e.Info(); err == nil {
			cands = append(cands, cand{filepath.Join(dir, n), fi.ModTime()})
		}
	}
	// The most recently changed first: that is the latest rotation.
	sort.Slice(cands, func(i, j int) bool { return cands[i].mtime.After(cands[j].mtime) })
	var byHash *cursor
	for _, cd := range cands {
		c, err := open(cd.name)
		if err != nil {
			continue
		}
		if c.dev == old.Dev && c.ino == old.Inode && c.holds(old) {
			if byHash != nil {
				byHash.f.Close()
			}
			return c, true
		}
		if byHash == nil && old.Offset > 0 && c.holds(old) {
			byHash = c
			continue
		}
		c.f.Close()
	}
	return byHash, byHash != nil
}

// save writes the state file, unless there is none or it is read-only.
func (f *Follower) save(pos Position) error {
	if f.State == "" || f.ReadOnly {
		return nil
	}
	st := State{Position: pos}
	if f.Checkpoint != nil {
		app, err := f.Checkpoint()
		if err != nil {
			return fmt.Errorf("postfixlog: checkpoint: %w", err)
		}
		st.App = app
	}
	if err := SaveState(f.State, st); err != nil {
		return err
	}
	f.saved, f.savedAt = pos, time.Now()
	return nil
}

func open(path string) (*cursor, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := fh.Stat()
	if err != nil {
		fh.Close()
		return nil, err
	}
	if fi.IsDir() {
		// Reading one fails at once, and following it waited for
		// lines forever, --once too, without a word.
		fh.Close()
		return nil, fmt.Errorf("%s is a directory, not a mail log", path)
	}
	dev, ino := fileID(fi)
	return &cursor{f: fh, dev: dev, ino: ino, pos: Position{Dev: dev, Inode: ino}}, nil
}

func fileID(fi fs.FileInfo) (dev, ino uint64) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Dev), uint64(st.Ino)
	}
	return 0, 0
}

func (c *cursor) size() (int64, error) {
	fi, err := c.f.Stat()
	if err != nil {
		return 0, fmt.Errorf("postfixlog: %w", err)
	}
	return fi.Size(), nil
}

// reset starts the cursor again at the start of its file.
func (c *cursor) reset() {
	c.pos = Position{Dev: c.dev, Inode: c.ino}
	c.buf = nil
}

// holds reports whether the file still holds p's last line, ending at
// p.Offset: it has not been truncated, or truncated and grown again.
func (c *cursor) holds(p Position) bool {
	if p.Offset == 0 {
		return true
	}
	if p.LineLen <= 0 || p.LineLen > p.Offset || p.LineLen > 2*maxLine {
		return false
	}
	b := make([]byte, p.LineLen)
	if _, err := c.f.ReadAt(b, p.Offset-p.LineLen); err != nil {
		return false
	}
	return lineHash(b) == p.LineHash
}

// lastLineStart returns the offset just past the last newline before size
// (0 if none), so that reading from the end never starts mid-line.
func lastLineStart(f *os.File, size int64) int64 {
	const window = 64 << 10
	start := max(size-window, 0)
	b := make([]byte, size-start)
	if _, err := f.ReadAt(b, start); err != nil && err != io.EOF {
		return size
	}
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		return start + int64(i) + 1
	}
	return start
}

// positionAt describes the line of f that ends at off (just after a
// newline).
func positionAt(f *os.File, off int64) Position {
	if off == 0 {
		return Position{}
	}
	start := lastLineStart(f, off-1)
	b := make([]byte, off-start)
	if _, err := f.ReadAt(b, start); err != nil {
		return Position{Offset: off}
	}
	return Position{Offset: off, LineLen: off - start, LineHash: lineHash(b)}
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// afterZeros is line without the zero octets it starts with. A power loss
// leaves a run of zeros in a syslog file where its last writes were lost
// (the file's size was committed, its data not), and the syslog daemon
// appends its next line after them. No syslog daemon starts a line with a
// zero (it writes the timestamp first), so the line after them is whole.
// A zero after other text is left: that text, a line cut by the crash,
// may be any program's, and what follows the zero its client's choice.
func afterZeros(line string) string { return strings.TrimLeft(line, "\x00") }
