package harness

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net"
	"net/netip"
	"os"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SinkOptions configure a Sink. The zero value is a healthy server that
// announces PIPELINING, 8BITMIME, ENHANCEDSTATUSCODES and DSN, and neither
// AUTH, XCLIENT nor XFORWARD. Command names are smtp-sink's: CONNECT, HELO,
// EHLO, MAIL, RCPT, DATA, "." (end of data), RSET, NOOP, VRFY, QUIT.
type SinkOptions struct {
	// Addr is the listening address; default 127.0.0.1 and a free port.
	Addr string
	// Hostname is used in the greeting and HELO/EHLO replies (-h).
	Hostname string

	// HardReject lists commands answered with HardReply, a 5xx (-f).
	// Like SoftReject, it turns off PIPELINING.
	HardReject []string
	// SoftReject lists commands answered with SoftReply, a 4xx (-r).
	SoftReject []string
	// HardReply replaces "500 5.3.0 Error: command failed" (-B).
	HardReply string
	// SoftReply replaces "450 4.3.0 Error: command failed" (-b).
	SoftReply string
	// Disconnect lists commands after which the sink closes the connection
	// without replying (-q).
	Disconnect []string
	// Reply421 lists commands answered with 421 and a disconnect (-Q).
	Reply421 []string
	// AbortAfterData makes the sink stop reading after its 354, wait
	// AbortDelay, send "550 This violates SMTP" and disconnect (-A).
	AbortAfterData bool
	AbortDelay     time.Duration

	// DataDelay delays the reply to DATA (-w); rounded up to whole seconds.
	DataDelay time.Duration
	// Delay delays the reply to the named commands (-W command:delay);
	// rounded up to whole seconds.
	Delay map[string]time.Duration

	// NoPipelining, No8BitMIME, NoEnhancedStatusCodes, NoDSN and NoESMTP
	// remove those from the EHLO reply (-p, -8, -E, -N, -e; NoESMTP also
	// rejects EHLO).
	NoPipelining          bool
	No8BitMIME            bool
	NoEnhancedStatusCodes bool
	NoDSN                 bool
	NoESMTP               bool
	// Auth, XClient and XForward announce those extensions. smtp-sink
	// answers any AUTH, XCLIENT or XFORWARD with "250 2.0.0 Ok".
	Auth, XClient, XForward bool

	// Timeout bounds the reading of one command (-t); default 100s.
	Timeout time.Duration
	// MaxConnections bounds simultaneous connections (-m); default 256.
	// Excess connections wait in the listen queue.
	MaxConnections int
	// Args are added to the smtp-sink command line as they are.
	Args []string

	// DumpDir is where the directory of dump files is made; default
	// os.TempDir(). Benchmarks put it on a tmpfs so that the sink, which
	// stands for another machine, does not share the relay's disk.
	DumpDir string
}

// SinkMessage is one mail transaction as smtp-sink dumped it.
type SinkMessage struct {
	// File is the dump file.
	File string
	// ClientAddr is the client's IP address.
	ClientAddr string
	// Proto is SMTP or ESMTP.
	Proto string
	// Helo is the argument of the last HELO or EHLO.
	Helo string
	// MailArgs is everything after "MAIL FROM:", as "<a@b> SIZE=10".
	MailArgs string
	// From is the address in MailArgs, without the angle brackets.
	From string
	// RcptArgs holds everything after "RCPT TO:" for each accepted RCPT.
	RcptArgs []string
	// To holds the addresses in RcptArgs, without the angle brackets.
	To []string
	// Data is the message as received, after dot-unstuffing, with "\n"
	// line endings (smtp-sink drops the "\r").
	Data string
}

// Sink is a running smtp-sink(1) that dumps each message to a file.
//
// A dump file appears when MAIL is accepted and is complete when smtp-sink
// closes it after the final "."; smtp-sink deletes it if the transaction is
// aborted. Count and Messages therefore list only the files smtp-sink no
// longer holds open. A message rejected by a fault at "." is dumped before
// the reject, so it is counted too.
type Sink struct {
	t    testing.TB
	addr string
	dir  string
	args []string
	bin  string

	mu   sync.Mutex // guards proc and hold
	proc *Proc      // nil while stopped
	// hold, while stopped, keeps the port bound but not listening:
	// clients are refused as by a sink that is down, and no other test's
	// listener on an ephemeral port can take it before Restart.
	hold int
}

// StartSink starts smtp-sink and waits until it listens. The test is skipped
// if smtp-sink is not installed. It is stopped at the end of the test.
func StartSink(t testing.TB, opts SinkOptions) *Sink {
	t.Helper()
	bin := need(t, "smtp-sink")
	dir, err := os.MkdirTemp(opts.DumpDir, "relaykeeper-sink-")
	if err != nil {
		t.Fatalf("harness: sink: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatalf("harness: sink: %v", err)
	}
	var privs []string
	if os.Geteuid() == 0 {
		// smtp-sink refuses to run as root without -u; the dump directory
		// must then be writable by that user.
		u, err := user.Lookup("postfix")
		if err != nil {
			u, err = user.Lookup("nobody")
		}
		if err != nil {
			t.Fatalf("harness: sink: no user to run smtp-sink as: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		if err := os.Chown(dir, uid, -1); err != nil {
			t.Fatalf("harness: sink: %v", err)
		}
		privs = []string{"-u", u.Username}
	}
	s := &Sink{t: t, dir: dir, bin: bin, hold: -1}
	s.args = append(privs, opts.args(dir)...)

	// A free port may be taken before smtp-sink binds it; try another.
	for attempt := 0; ; attempt++ {
		s.addr = opts.Addr
		if s.addr == "" {
			s.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(FreePort(t)))
		}
		err := s.start()
		if err == nil {
			break
		}
		if opts.Addr != "" || attempt == 2 {
			t.Fatalf("harness: sink: %v", err)
		}
	}
	t.Cleanup(func() {
		s.Stop()
		s.release()
	})
	return s
}

func (o SinkOptions) args(dir string) []string {
	var a []string
	flag := func(on bool, f string) {
		if on {
			a = append(a, f)
		}
	}
	list := func(f string, cmds []string) {
		if len(cmds) > 0 {
			a = append(a, f, strings.Join(cmds, ","))
		}
	}
	value := func(f, v string) {
		if v != "" {
			a = append(a, f, v)
		}
	}
	secs := func(d time.Duration) string { return strconv.Itoa(int(math.Ceil(d.Seconds()))) }

	a = append(a, "-d", filepath.Join(dir, "%Y%m%d%H%M%S."))
	value("-h", o.Hostname)
	list("-f", o.HardReject)
	list("-r", o.SoftReject)
	value("-B", o.HardReply)
	value("-b", o.SoftReply)
	list("-q", o.Disconnect)
	list("-Q", o.Reply421)
	if o.AbortAfterData {
		a = append(a, "-A", secs(o.AbortDelay))
	}
	if o.DataDelay > 0 {
		a = append(a, "-w", secs(o.DataDelay))
	}
	cmds := make([]string, 0, len(o.Delay))
	for c := range o.Delay {
		cmds = append(cmds, c)
	}
	sort.Strings(cmds)
	for _, c := range cmds {
		a = append(a, "-W", c+":"+secs(o.Delay[c]))
	}
	flag(o.NoPipelining, "-p")
	flag(o.No8BitMIME, "-8")
	flag(o.NoEnhancedStatusCodes, "-E")
	flag(o.NoDSN, "-N")
	flag(o.NoESMTP, "-e")
	flag(!o.Auth, "-a")
	flag(!o.XClient, "-C")
	flag(!o.XForward, "-F")
	if o.Timeout > 0 {
		a = append(a, "-t", secs(o.Timeout))
	}
	if o.MaxConnections > 0 {
		a = append(a, "-m", strconv.Itoa(o.MaxConnections))
	}
	return append(a, o.Args...)
}

// start runs smtp-sink on s.addr; the caller holds no lock.
func (s *Sink) start() error {
	args := append(append([]string{}, s.args...), "-4", "inet:"+s.addr, "100")
	p, err := startProc(s.t, ProcOptions{WaitAddr: s.addr}, s.bin, args...)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.proc = p
	s.mu.Unlock()
	return nil
}

// Addr returns the listening address, as "127.0.0.1:PORT".
func (s *Sink) Addr() string { return s.addr }

// Dir returns the directory of the dump files.
func (s *Sink) Dir() string { return s.dir }

// Stop ends smtp-sink (SIGTERM, then SIGKILL), and deletes the dump files of
// the transactions it was in the middle of. Its port stays bound, refusing
// connections, until Restart or the end of the test. It can be called more
// than once.
func (s *Sink) Stop() {
	s.mu.Lock()
	p := s.proc
	s.proc = nil
	s.mu.Unlock()
	if p == nil {
		return
	}
	open := openFiles(p.PID(), s.dir)
	p.Signal(syscall.SIGTERM)
	if _, err := p.Wait(5 * time.Second); err != nil && p.Running() {
		p.Kill()
		p.Wait(5 * time.Second)
	}
	for f := range open {
		os.Remove(f)
	}
	s.mu.Lock()
	s.hold = holdPort(s.addr)
	s.mu.Unlock()
}

// release lets go of the port that Stop held.
func (s *Sink) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.hold >= 0 {
		syscall.Close(s.hold)
	}
	s.hold = -1
}

// holdPort binds a socket to addr without listening on it, so that
// connections to it are refused and the port is not handed to another
// listener; -1 if it cannot (the port taken meanwhile).
func holdPort(addr string) int {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return -1
	}
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		syscall.Close(fd)
		return -1
	}
	return fd
}

// Restart starts smtp-sink again, on the same address and dump directory, so
// Count goes on from where it was. It fails the test if the sink runs.
func (s *Sink) Restart() {
	s.t.Helper()
	s.mu.Lock()
	running := s.proc != nil
	s.mu.Unlock()
	if running {
		s.t.Fatalf("harness: sink: Restart while running; call Stop first")
	}
	s.release()
	// The port was just released; give a slow kernel a moment.
	var err error
	for deadline := time.Now().Add(5 * time.Second); ; {
		if err = s.start(); err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("harness: sink: restart: %v", err)
	}
}

// Count returns the number of messages received so far.
func (s *Sink) Count() int {
	return len(s.complete())
}

// Messages returns the messages received so far, oldest first.
func (s *Sink) Messages() []SinkMessage {
	s.t.Helper()
	var msgs []SinkMessage
	for _, f := range s.complete() {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue // an aborted transaction, deleted meanwhile
		}
		if err != nil {
			s.t.Fatalf("harness: sink: %v", err)
		}
		m, err := parseSinkDump(b)
		if err != nil {
			s.t.Fatalf("harness: sink: %s: %v", f, err)
		}
		m.File = f
		msgs = append(msgs, m)
	}
	return msgs
}

// WaitCount waits until at least n messages have been received, or fails
// the test after timeout. It returns the count.
func (s *Sink) WaitCount(t testing.TB, n int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		c := s.Count()
		if c >= n {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("harness: sink %s: %d messages after %v; want %d", s.addr, c, timeout, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// complete lists the dump files that smtp-sink has closed, oldest first.
// The directory is read before the open files: a file opened in between is
// not listed, and one closed in between is complete (a finished file) or
// already deleted (an aborted one is unlinked before it is closed).
func (s *Sink) complete() []string {
	entries, _ := os.ReadDir(s.dir)
	s.mu.Lock()
	p := s.proc
	s.mu.Unlock()
	var open map[string]bool
	if p != nil {
		open = openFiles(p.PID(), s.dir)
	}
	type file struct {
		path string
		mod  time.Time
	}
	var files []file
	for _, e := range entries {
		path := filepath.Join(s.dir, e.Name())
		if !e.Type().IsRegular() || open[path] {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue
		}
		files = append(files, file{path, info.ModTime()})
	}
	sort.Slice(files, func(i, j int) bool {
		if !files[i].mod.Equal(files[j].mod) {
			return files[i].mod.Before(files[j].mod)
		}
		return files[i].path < files[j].path
	})
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = f.path
	}
	return paths
}

// openFiles returns the files under dir that process pid holds open.
func openFiles(pid int, dir string) map[string]bool {
	fdDir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(fdDir)
	if err != nil {
		return nil
	}
	open := make(map[string]bool)
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err == nil && strings.HasPrefix(target, dir+"/") {
			open[target] = true
		}
	}
	return open
}

// parseSinkDump parses one smtp-sink dump file: X-Client-Addr,
// X-Client-Proto, X-Helo-Args (if any), X-Mail-Args, one X-Rcpt-Args per
// accepted recipient, a three-line Received header that ends smtp-sink's
// part, then the message with "\n" line endings, then an empty line.
func parseSinkDump(b []byte) (SinkMessage, error) {
	var m SinkMessage
	off := 0 // what is read of b
	next := func() (string, bool) {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return "", false
		}
		line := string(b[off : off+i])
		off += i + 1
		return line, true
	}
	for {
		line, ok := next()
		if !ok {
			return m, fmt.Errorf("no Received header: incomplete dump")
		}
		name, value, _ := strings.Cut(line, ": ")
		switch name {
		case "X-Client-Addr":
			m.ClientAddr = value
		case "X-Client-Proto":
			m.Proto = value
		case "X-Helo-Args":
			m.Helo = value
		case "X-Mail-Args":
			m.MailArgs = value
			m.From = angleAddr(value)
		case "X-Rcpt-Args":
			m.RcptArgs = append(m.RcptArgs, value)
			m.To = append(m.To, angleAddr(value))
		case "Received":
			// Two continuation lines follow: "\tby ..." and "\tdate".
			for i := 0; i < 2; i++ {
				if _, ok := next(); !ok {
					return m, fmt.Errorf("short Received header")
				}
			}
			m.Data = strings.TrimSuffix(string(b[off:]), "\n")
			return m, nil
		}
	}
}

// angleAddr returns the address in "<a@b> PARAM=x", or the first word.
func angleAddr(args string) string {
	if strings.HasPrefix(args, "<") {
		if i := strings.IndexByte(args, '>'); i > 0 {
			return args[1:i]
		}
	}
	addr, _, _ := strings.Cut(args, " ")
	return addr
}
