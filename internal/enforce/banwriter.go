package enforce

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"log/syslog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/logfile"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// Clock is the time source of the ban writer; tests move a fake one.
type Clock interface {
	Now() time.Time
	// After is time.After.
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// BanSink takes relay-enforcer's "bannable REASON IP" lines (BanLine), the
// ones its fail2ban jail reads: syslog (SyslogBans) or a file (FileBans).
type BanSink interface {
	WriteBan(line string) error
}

// BanEvent is one ban as its lines tell it.
type BanEvent struct {
	Client netip.Addr
	// Net is what is banned (BanNet): the client's address alone, or
	// its network; invalid in events made before networks: Client alone.
	Net    netip.Prefix `json:",omitzero"`
	Reason string
	Until  time.Time
	Rule   string
	// ID is the refused message's queue id; Reply the upstream's reply.
	ID, Reply string
}

// BanWriter is the one writer of ban lines, for the relay and the
// companion alike: when a ban takes effect it writes the mail log's ban
// event (docs/maillog.md) and relay-enforcer's bannable line to its sink.
// Bans wait in a queue ordered by when they take effect (the ban delay:
// the client still hears the reply to its own session first); Run writes
// each when due. When Run's context ends, or on Flush, the bans still
// waiting are written at once: a stop within the ban delay loses none.
//
// A BanWriter is safe for concurrent use.
type BanWriter struct {
	sink  BanSink         // nil: the mail log only
	mlog  *maillog.Logger // nil: the sink only
	clock Clock
	log   *slog.Logger

	mu      sync.Mutex
	pending []pendingBan  // guarded by mu; by due time
	wake    chan struct{} // a new ban may be due sooner
	// written, if set, hears of each ban line once written (OnWritten).
	written func(BanEvent)
}

// OnWritten has f called with each ban once its line is written, so that
// the relay knows every ban in force, even one lifted within seconds
// (Enforcer.NoteBan). Call it before the writer runs.
func (w *BanWriter) OnWritten(f func(BanEvent)) *BanWriter {
	w.written = f
	return w
}

type pendingBan struct {
	due time.Time
	ev  BanEvent
}

// NewBanWriter returns a writer to sink and the mail log; either may be
// nil. clock nil is the real clock, log nil discards.
func NewBanWriter(sink BanSink, mlog *maillog.Logger, clock Clock, log *slog.Logger) *BanWriter {
	if clock == nil {
		clock = realClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &BanWriter{sink: sink, mlog: mlog, clock: clock, log: log, wake: make(chan struct{}, 1)}
}

// Add queues a ban's lines for due; a due time already past is written at
// once.
func (w *BanWriter) Add(due time.Time, ev BanEvent) {
	if !due.After(w.clock.Now()) {
		w.write(ev)
		return
	}
	w.mu.Lock()
	i, _ := slices.BinarySearchFunc(w.pending, due, func(p pendingBan, t time.Time) int { return p.due.Compare(t) })
	w.pending = slices.Insert(w.pending, i, pendingBan{due, ev})
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Resume queues the lines of the bans of list that a refusal made (their
// reason is "RULE: REPLY") and that are not in force yet: their lines are
// still due, and a relay that was killed within the ban delay (kill -9, a
// crash, a power loss) wrote them nowhere. A ban added by hand or from the
// dashboard has no lines. It returns w.
func (w *BanWriter) Resume(list []BanEntry) *BanWriter {
	now := w.clock.Now()
	for _, b := range list {
		rule, reply, ok := strings.Cut(b.Reason, ": ")
		if !b.From.After(now) || !ok || rule == "" || strings.ContainsAny(rule, " \t") {
			continue
		}
		w.Add(b.From, BanEvent{Client: cmpAddr(b.Client, b.IP), Net: b.Network(), Reason: b.Reason, Until: b.Until, Rule: rule, Reply: reply})
	}
	return w
}

// WaitingBan is a ban whose lines are still to be written, and when.
type WaitingBan struct {
	Due   time.Time `json:"due"`
	Event BanEvent  `json:"ban"`
}

// Waiting returns the bans still waiting, for a caller that keeps them
// across a restart (the companion's state) and gives them back to Add.
func (w *BanWriter) Waiting() []WaitingBan {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]WaitingBan, len(w.pending))
	for i, p := range w.pending {
		out[i] = WaitingBan{Due: p.due, Event: p.ev}
	}
	return out
}

// Pending is the number of bans waiting.
func (w *BanWriter) Pending() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)
}

// Run writes each ban when due, until ctx ends; then it writes those still
// waiting and returns.
func (w *BanWriter) Run(ctx context.Context) {
	defer w.Flush()
	for {
		w.mu.Lock()
		now := w.clock.Now()
		var due []pendingBan
		for len(w.pending) > 0 && !w.pending[0].due.After(now) {
			due = append(due, w.pending[0])
			w.pending = w.pending[1:]
		}
		var timer <-chan time.Time
		if len(w.pending) > 0 {
			timer = w.clock.After(w.pending[0].due.Sub(now))
		}
		w.mu.Unlock()
		for _, p := range due {
			w.write(p.ev)
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-timer:
		}
	}
}

// Flush writes every ban still waiting, now.
func (w *BanWriter) Flush() {
	w.mu.Lock()
	due := w.pending
	w.pending = nil
	w.mu.Unlock()
	for _, p := range due {
		w.write(p.ev)
	}
}

func (w *BanWriter) write(ev BanEvent) {
	ev.Net = ev.Network()
	w.mlog.Ban(ipString(ev.Client), ev.Net.String(), ev.ID, ev.Until, ev.Rule, ev.Reply)
	if w.written != nil {
		w.written(ev)
	}
	if w.sink == nil {
		return
	}
	// The client's own line first, ending in its address as
	// relay-enforcer's does (its manual's jail matches <HOST> there);
	// then, for a ban of its network, the network's line.
	lines := []string{BanLine(ev.Reason, ev.Client)}
	if n := ev.Network(); n.Bits() < n.Addr().BitLen() {
		lines = append(lines, BanLineNet(ev.Reason, n))
	}
	for _, line := range lines {
		if err := w.sink.WriteBan(line); err != nil {
			w.log.Error("ban line not written", "client", ev.Client, "err", err)
		}
	}
}

// Network is what the event bans: Net, or Client alone.
func (ev BanEvent) Network() netip.Prefix {
	if ev.Net.IsValid() {
		return ev.Net
	}
	ip := banIP(ev.Client)
	return netip.PrefixFrom(ip, ip.BitLen())
}

// cmpAddr is the first valid address of a and b.
func cmpAddr(a, b netip.Addr) netip.Addr {
	if a.IsValid() {
		return a
	}
	return b
}

// SyslogBans sends ban lines to syslog under relay-enforcer's tag, with the
// priority logger(1) gives (user.notice), as relay-enforcer does.
type SyslogBans struct{ w *syslog.Writer }

// OpenSyslogBans connects to the local syslog.
func OpenSyslogBans() (*SyslogBans, error) {
	w, err := syslog.New(syslog.LOG_USER|syslog.LOG_NOTICE, SyslogTag)
	if err != nil {
		return nil, fmt.Errorf("enforce: syslog: %w", err)
	}
	return &SyslogBans{w}, nil
}

// WriteBan implements BanSink.
func (s *SyslogBans) WriteBan(line string) error { return s.w.Notice(line) }

// FileBans appends ban lines to a file (or a writer) in syslog's format,
//
//	Nov 22 10:00:10 relay relay-enforcer[812]: bannable REASON 203.0.113.9
//
// so that relay-enforcer's fail2ban filter reads them as they are. Each
// line is synced before WriteBan returns.
type FileBans struct {
	// Path is the file, opened for each line (logrotate may move it);
	// "" writes to W. As for --log-file, "%d" in it is the date (YYYYMMDD)
	// and "%h" the hour (HH), local time, so that a new file starts each
	// day or hour. A file created by root (relaykeeper --check, a start by
	// hand) is given to its directory's owner, the unit's LogsDirectory,
	// so that the relay, running as its own user, can still append to it.
	Path string
	W    io.Writer
	// Host is the host name in the line.
	Host string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

func (f *FileBans) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// Check opens Path as WriteBan does, creating the file, so that a path
// that cannot take a ban line (a directory, a missing folder, no
// permission) is refused at start rather than at the first ban; fail2ban
// also wants the file to exist before it watches it.
func (f *FileBans) Check() error {
	if f.Path == "" {
		return nil
	}
	return banLogErr(logfile.AppendSync(f.Path, f.now(), nil))
}

// WriteBan implements BanSink.
func (f *FileBans) WriteBan(line string) error {
	now := f.now()
	s := fmt.Sprintf("%s %s %s[%d]: %s\n", now.Format(time.Stamp), f.Host, SyslogTag, os.Getpid(), line)
	if f.Path == "" {
		_, err := io.WriteString(f.W, s)
		return err
	}
	return banLogErr(logfile.AppendSync(f.Path, now, []byte(s)))
}

// banLogErr names the ban log in err, logfile's own prefix left out.
func banLogErr(err error) error {
	if err == nil {
		return nil
	}
	if inner := errors.Unwrap(err); inner != nil {
		err = inner
	}
	return fmt.Errorf("enforce: ban log: %w", err)
}
