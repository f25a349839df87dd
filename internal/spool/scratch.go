package spool

import (
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// Scratch files hold a message received past the memory budget until its
// journal record is synced (hot.go). Each is an unnamed file (O_TMPFILE)
// on the spool's file system, never synced: emptied before the kernel
// writes it back, as it usually is, it costs the disk nothing, and the
// journal record is what makes the message durable.
//
// They are kept and reused, emptied, rather than made for each message:
// ext4 without a journal (this project's benchmark machine) skips, when
// it allocates an inode, every inode freed in the last seconds, so at a
// thousand messages a second each new file costs a scan over thousands.

// maxIdleScratch bounds the scratch files kept open for reuse.
const maxIdleScratch = 64

type scratchPool struct {
	mu   sync.Mutex
	idle []*os.File
}

// get returns an empty scratch file on dir's file system.
func (p *scratchPool) get(dir string) (*os.File, error) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		f := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return f, nil
	}
	p.mu.Unlock()
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("spool: scratch file: %w", err)
	}
	return os.NewFile(uintptr(fd), "scratch"), nil
}

// put empties f and keeps it for reuse, or closes it.
func (p *scratchPool) put(f *os.File) {
	if f.Truncate(0) != nil {
		f.Close()
		return
	}
	p.mu.Lock()
	if len(p.idle) < maxIdleScratch {
		p.idle = append(p.idle, f)
		f = nil
	}
	p.mu.Unlock()
	if f != nil {
		f.Close()
	}
}
