package smtpd

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// draft is where Data puts one message while it is received: a
// spool.Writer for store-and-forward, a proxyDraft for the proxy.
type draft interface {
	io.Writer
	ID() string
	Size() int64
	// Prepare writes the envelope; filters may then run on the files.
	Prepare(env *spool.Envelope) error
	ContentPath() string
	EnvelopePath() string
	// Relock follows a content file a filter renamed into place.
	Relock() error
	// Commit accepts the message (store-and-forward only).
	Commit(hold bool) error
	Abort()
}

// newDraft starts one message: in the spool, or for the proxy in memory.
func (ss *session) newDraft(now time.Time) (draft, error) {
	if ss.s.opts.Proxy != nil {
		return newProxyDraft(ss.s.opts.Spool, now, ss.s.opts.Filter != nil, &ss.s.proxyBufs), nil
	}
	return ss.s.opts.Spool.Create(now)
}

// proxyMemLimit is how much of a proxied message is kept in memory before
// it goes to a scratch file: 100 sessions of 4 KiB messages stay in RAM,
// and 100 sessions of 100 KiB ones stay under 40 MiB of RSS.
const proxyMemLimit = 64 << 10

// proxyDraft holds a message the proxy is passing on. The client's 250 is
// the upstream's own, so nothing here needs to survive a crash: the content
// stays in memory, and only when a filter or the enforcer needs a file, or
// the message outgrows proxyMemLimit, is it written to a private scratch
// file (spool.ScratchDir, E-MailRelay's names, never fsynced, never
// recovered) which Abort removes.
type proxyDraft struct {
	sp        *spool.Spool
	id        string
	bufs      *sync.Pool // of *[chunkSize]byte, shared by the server's sessions
	chunks    []*[chunkSize]byte
	mem       int      // bytes in chunks
	f         *os.File // the scratch content file, once there is one
	n         int64
	wantFiles bool  // a filter will run: write files at Prepare
	err       error // a scratch write that failed
}

// chunkSize: the content is kept in pooled chunks, not one growing buffer,
// so a message takes at most one chunk more than its size, and the chunks
// are reused, message after message, instead of becoming garbage. 16 KiB
// holds a typical message (4 KiB, and our Received header) in one chunk
// without holding much more than it needs.
const chunkSize = 16 << 10

func newProxyDraft(sp *spool.Spool, now time.Time, filter bool, bufs *sync.Pool) *proxyDraft {
	return &proxyDraft{sp: sp, id: sp.NewID(now), wantFiles: filter, bufs: bufs}
}

// getChunk takes a chunk from the pool, or makes one.
func getChunk(bufs *sync.Pool) *[chunkSize]byte {
	if c, _ := bufs.Get().(*[chunkSize]byte); c != nil {
		return c
	}
	return new([chunkSize]byte)
}

// memWrite appends p to the chunks.
func (d *proxyDraft) memWrite(p []byte) {
	for len(p) > 0 {
		off := d.mem % chunkSize
		if off == 0 {
			d.chunks = append(d.chunks, getChunk(d.bufs))
		}
		n := copy(d.chunks[len(d.chunks)-1][off:], p)
		d.mem += n
		p = p[n:]
	}
}

// memReader reads the chunks. It is a WriterTo that hands each chunk to
// the writer whole: io.Copy then needs no buffer of its own (an
// io.MultiReader made it allocate 32 KiB for every message).
func (d *proxyDraft) memReader() *net.Buffers {
	bs := make(net.Buffers, 0, len(d.chunks))
	for i, c := range d.chunks {
		end := chunkSize
		if i == len(d.chunks)-1 && d.mem%chunkSize != 0 {
			end = d.mem % chunkSize
		}
		bs = append(bs, c[:end])
	}
	return &bs
}

// freeChunks gives the chunks back to the pool.
func (d *proxyDraft) freeChunks() {
	for _, c := range d.chunks {
		d.bufs.Put(c)
	}
	d.chunks, d.mem = nil, 0
}

func (d *proxyDraft) ID() string  { return d.id }
func (d *proxyDraft) Size() int64 { return d.n }

func (d *proxyDraft) Write(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	d.n += int64(len(p))
	if d.f == nil && d.mem+len(p) > proxyMemLimit {
		if err := d.spill(); err != nil {
			return 0, err
		}
	}
	if d.f != nil {
		n, err := d.f.Write(p)
		if err != nil {
			d.err = fmt.Errorf("proxy scratch file: %w", err)
		}
		return n, d.err
	}
	d.memWrite(p)
	return len(p), nil
}

func (d *proxyDraft) scratchPath(suffix string) string {
	return filepath.Join(d.sp.ScratchDir(), d.id+suffix)
}

// spill moves the content from memory to the scratch file.
func (d *proxyDraft) spill() error {
	if d.f != nil {
		return d.err
	}
	if err := os.MkdirAll(d.sp.ScratchDir(), 0o750); err != nil {
		d.err = fmt.Errorf("proxy scratch directory: %w", err)
		return d.err
	}
	f, err := os.OpenFile(d.scratchPath(".content"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		d.err = fmt.Errorf("proxy scratch file: %w", err)
		return d.err
	}
	d.f = f
	if _, err := io.Copy(f, d.memReader()); err != nil {
		d.err = fmt.Errorf("proxy scratch file: %w", err)
		return d.err
	}
	d.freeChunks()
	return nil
}

// Prepare keeps the envelope; with a filter to run, it writes both files.
func (d *proxyDraft) Prepare(env *spool.Envelope) error {
	env.ID = d.id
	if !d.wantFiles {
		return d.err
	}
	if err := d.spill(); err != nil {
		return err
	}
	if err := os.WriteFile(d.scratchPath(".envelope.new"), env.Marshal(), 0o640); err != nil {
		return fmt.Errorf("proxy scratch envelope: %w", err)
	}
	return nil
}

// ContentPath is the scratch content file, written now if the content was
// in memory (the enforcer copies a refused message from it).
func (d *proxyDraft) ContentPath() string {
	d.spill()
	return d.scratchPath(".content")
}

func (d *proxyDraft) EnvelopePath() string { return d.scratchPath(".envelope.new") }

// Relock reopens the content file, which a filter may have replaced.
func (d *proxyDraft) Relock() error {
	if d.f == nil {
		return nil
	}
	f, err := os.Open(d.scratchPath(".content"))
	if err != nil {
		return fmt.Errorf("proxy scratch file: %w", err)
	}
	d.f.Close()
	d.f = f
	return nil
}

// Content is the message for the upstream, and its size.
func (d *proxyDraft) Content() (io.Reader, int64, error) {
	if d.err != nil {
		return nil, 0, d.err
	}
	if d.f == nil {
		return d.memReader(), int64(d.mem), nil
	}
	fi, err := d.f.Stat()
	if err != nil {
		return nil, 0, fmt.Errorf("proxy scratch file: %w", err)
	}
	return io.NewSectionReader(d.f, 0, fi.Size()), fi.Size(), nil
}

// Commit is never called: the proxy's acceptance is the upstream's.
func (d *proxyDraft) Commit(bool) error { return errors.New("smtpd: a proxied message is not stored") }

// Abort removes the scratch files, if any.
func (d *proxyDraft) Abort() {
	if d.f != nil {
		d.f.Close()
		os.Remove(d.scratchPath(".content"))
		os.Remove(d.scratchPath(".envelope.new"))
		d.f = nil
	}
	d.freeChunks()
}

// checkFilteredEnvelope turns a filter's pass into a failure when the
// filter left an envelope that does not parse: accepted, the message could
// never be forwarded. An envelope the filter took away makes it an abandon.
func checkFilteredEnvelope(path string, res filter.Result) filter.Result {
	f, err := os.Open(path)
	if err == nil {
		_, err = spool.Unmarshal(f)
		f.Close()
	}
	switch {
	case err == nil:
		return res
	case errors.Is(err, fs.ErrNotExist):
		return filterTook(res)
	}
	return filter.BrokenEnvelope(err)
}

// checkFiltered is checkFilteredEnvelope, and a content file the filter
// left empty refused as a filter failure: the queue never sends an empty
// content file (the spool's claim refuses it as torn), so accepted, the
// message would wait unsent, and its sender never hear of it.
func checkFiltered(content, envelope string, res filter.Result) filter.Result {
	if res = checkFilteredEnvelope(envelope, res); res.Outcome != filter.OK {
		return res
	}
	if fi, err := os.Lstat(content); err == nil && fi.Size() == 0 {
		return filter.EmptyContent()
	}
	return res
}

const filterTookReason = "the filter took the message's files"

// filterTook is the result of a filter that passed a message (exit 0) but
// moved or removed its files: it took the message, as with exit 100, which
// E-MailRelay's guide allows ("it can even remove the current message").
// Refusing it would only have the client send it again, for the filter to
// take another copy.
func filterTook(res filter.Result) filter.Result {
	return filter.Result{Outcome: filter.Abandon, Rescan: res.Rescan, Reason: filterTookReason}
}

// errProxyEnvelope refuses, for now, a proxied message whose envelope a
// filter changed: the sender and the recipients went upstream before the
// message did, so the change could not be made, and sending the message
// as it was addressed would deliver it where the filter said not to.
var errProxyEnvelope = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
	Message: "filter changed the envelope, which a proxy cannot apply; try again later"}

// proxyEnvelopeChange says what the filters changed in the envelope file at
// path of a proxied message whose envelope went upstream as sent: "sender",
// "recipients", or "" for neither. An envelope that is gone or does not
// parse is checkFilteredEnvelope's business.
func proxyEnvelopeChange(path string, sent *spool.Envelope) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	env, err := spool.Unmarshal(f)
	f.Close()
	if err != nil {
		return ""
	}
	addrs := func(rs []spool.Recipient) []string {
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = r.Addr
		}
		slices.Sort(out)
		return out
	}
	switch {
	case env.From != sent.From:
		return "sender"
	case !slices.Equal(addrs(env.Recipients), addrs(sent.Recipients)):
		return "recipients"
	}
	return ""
}

// storageReply is the reply to a message the spool could not take. A full
// file system (ENOSPC, EDQUOT, or the journal keeping room for what it
// serves) is 452 4.3.1, "Insufficient system storage"; anything else (an
// I/O error, a read-only file system, a spool removed) is a local error,
// 451 4.3.0, as Postfix answers a queue file write error: telling the
// client, and the mail log, that the disk is full when it is failing
// sends whoever reads it to look for space.
func storageReply(err error) *smtp.SMTPError {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return errStorage
	}
	return errLocal
}
