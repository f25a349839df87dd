package pop3

import (
	"io"
	"os"
	"sync"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// contentOctets counts what writeMessage sends for a message's content,
// without its dot-stuffing and closing line. RFC 1939 section 11 has a
// server that keeps messages with other line endings count each line ending
// as two octets, so that STAT, LIST and "+OK N octets" give what RETR
// sends: a bare LF counts two, and a last line without its ending gets the
// CRLF (or, after a CR, the LF) that writeMessage adds.
func contentOctets(r io.Reader) (int64, error) {
	var n int64
	prev := byte('\n') // an empty file sends nothing
	buf := make([]byte, 32<<10)
	for {
		k, err := r.Read(buf)
		for _, c := range buf[:k] {
			n++
			if c == '\n' && prev != '\r' {
				n++
			}
			prev = c
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	switch prev {
	case '\n':
	case '\r':
		n++
	default:
		n += 2
	}
	return n, nil
}

// maxSizes bounds the sizes a Server remembers; past it, it starts again.
const maxSizes = 1 << 16

// sizes remembers the octet counts of content files, for as long as a file
// is the same one (same file, size and modification time), so that a login
// reads only the messages no session has counted before.
type sizes struct {
	mu sync.Mutex
	m  map[string]sizeEntry
}

type sizeEntry struct {
	fi     os.FileInfo
	octets int64
}

// octets returns the size of message id of sp as RETR sends it.
func (c *sizes) octets(sp *spool.Spool, id string) (int64, error) {
	path := sp.ContentPath(id)
	fi, err := os.Stat(path)
	if err != nil {
		// A message served from the journal has no file; it was
		// received over SMTP, so its line endings are CRLF already.
		return sp.ContentSize(id)
	}
	c.mu.Lock()
	e, ok := c.m[path]
	c.mu.Unlock()
	if ok && os.SameFile(e.fi, fi) && e.fi.Size() == fi.Size() && e.fi.ModTime().Equal(fi.ModTime()) {
		return e.octets, nil
	}
	f, err := sp.OpenContent(id)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	n, err := contentOctets(f)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxSizes {
		c.m = make(map[string]sizeEntry)
	}
	c.m[path] = sizeEntry{fi: fi, octets: n}
	c.mu.Unlock()
	return n, nil
}
