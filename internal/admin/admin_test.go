package admin

import (
	"bytes"
	"context"
	"errors"
	"go/build"
	"io"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// The fake implements every optional interface.
var (
	_ Relay       = (*fakeRelay)(nil)
	_ SMTPSwitch  = (*fakeRelay)(nil)
	_ DNSBLSwitch = (*fakeRelay)(nil)
	_ Terminator  = (*fakeRelay)(nil)
	_ Subscriber  = (*Events)(nil)
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fakeRelay records what the admin interface asks of it. Flush blocks
// until the test sends its result on flushResult, if that is set.
type fakeRelay struct {
	flushResult  chan error    // nil: Flush returns nil at once
	flushStarted chan struct{} // receives when Flush starts, if set
	forwardErr   error
	noDNSBL      bool // SetDNSBL fails: a relay without --dnsbl
	noSMTP       bool // status never says SMTP is enabled: --no-smtp

	mu         sync.Mutex // guards the fields below
	forwards   int
	flushes    int
	smtp       []bool
	dnsbl      []bool
	terminated int
}

func (f *fakeRelay) Forward() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forwards++
	return f.forwardErr
}

func (f *fakeRelay) Flush(ctx context.Context) error {
	f.mu.Lock()
	f.flushes++
	f.mu.Unlock()
	if f.flushStarted != nil {
		f.flushStarted <- struct{}{}
	}
	if f.flushResult == nil {
		return nil
	}
	select {
	case err := <-f.flushResult:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *fakeRelay) Status() Status {
	f.mu.Lock()
	smtpOn := !f.noSMTP && (len(f.smtp) == 0 || f.smtp[len(f.smtp)-1])
	f.mu.Unlock()
	return Status{
		Started: t0.Add(-90 * time.Minute), Listeners: []string{"127.0.0.1:25", "submission=127.0.0.1:587"},
		SMTPEnabled: smtpOn, DNSBLEnabled: true, Sessions: 2, Connections: 154,
		Accepted: 120, Forwarded: 117, Failed: 3,
	}
}

func (f *fakeRelay) SetSMTP(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.smtp = append(f.smtp, on)
}

func (f *fakeRelay) SetDNSBL(on bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.noDNSBL {
		return errNoDNSBL
	}
	f.dnsbl = append(f.dnsbl, on)
	return nil
}

func (f *fakeRelay) Terminate() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.terminated++
}

func (f *fakeRelay) get() fakeRelay {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fakeRelay{forwards: f.forwards, flushes: f.flushes, terminated: f.terminated,
		smtp: append([]bool(nil), f.smtp...), dnsbl: append([]bool(nil), f.dnsbl...)}
}

// plainRelay hides the fake's optional interfaces.
type plainRelay struct{ Relay }

const content = "Received: from client.example\r\nSubject: test\r\nFrom: a@example.com\r\n\r\nbody line\r\n"

// addMessage commits a message and moves it to state st.
func addMessage(t testing.TB, s *spool.Spool, from, to string, st spool.State) string {
	t.Helper()
	w, err := s.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, content)
	env := &spool.Envelope{From: from, Arrival: t0, Client: "127.0.0.1:40000", Helo: "client.example",
		Recipients: []spool.Recipient{{Addr: to, Status: spool.Pending}}}
	if err := w.Prepare(env); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(st == spool.Held); err != nil {
		t.Fatal(err)
	}
	if st == spool.Ready || st == spool.Held {
		return w.ID()
	}
	c, err := s.Lock(w.ID())
	if err != nil {
		t.Fatal(err)
	}
	if st == spool.Failed {
		c.Env.Attempts = 1
		c.Env.NextAttempt = t0.Add(time.Hour)
		c.Env.LastReply = "550 5.1.1 No such user"
		c.Env.Recipients[0].Status, c.Env.Recipients[0].Reply = spool.Bounced, "550 5.1.1 No such user"
	}
	if err := c.Move(st); err != nil {
		t.Fatal(err)
	}
	return w.ID()
}

func newSpool(t testing.TB) *spool.Spool {
	t.Helper()
	s, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixture is a Server with a fake relay over a temporary spool.
type fixture struct {
	srv   *Server
	relay *fakeRelay
	spool *spool.Spool
	addr  string // the text listener's, once started
	done  chan error
}

func newFixture(t testing.TB, opts Options) *fixture {
	t.Helper()
	f := &fixture{relay: &fakeRelay{}}
	if opts.Spool == nil {
		opts.Spool = newSpool(t)
	}
	if opts.Relay == nil {
		opts.Relay = f.relay
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return t0 }
	}
	f.spool = opts.Spool
	f.srv = New(opts)
	t.Cleanup(func() { f.srv.Close() })
	return f
}

// serveText starts the text protocol on a loopback listener, or on l.
func (f *fixture) serveText(t *testing.T, l net.Listener) {
	t.Helper()
	if l == nil {
		var err error
		l, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
	}
	f.addr = l.Addr().String()
	if nl, ok := l.(nonLoopback); ok {
		f.addr = nl.Listener.Addr().String()
	}
	f.done = make(chan error, 1)
	go func() { f.done <- f.srv.ServeText(l) }()
}

// client is a text-protocol client.
type client struct {
	t *testing.T
	*textproto.Conn
	nc     net.Conn
	prompt string
}

func (f *fixture) dial(t *testing.T) *client {
	t.Helper()
	nc, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	c := &client{t: t, Conn: textproto.NewConn(nc), nc: nc, prompt: f.srv.opts.Prompt}
	t.Cleanup(func() { c.Close() })
	return c
}

// reply reads up to and including the prompt and returns the lines before
// it.
func (c *client) reply() []string {
	c.t.Helper()
	var b []byte
	for !bytes.HasSuffix(b, []byte(c.prompt)) {
		x, err := c.R.ReadByte()
		if err != nil {
			c.t.Fatalf("reading reply: %v after %q", err, b)
		}
		b = append(b, x)
	}
	text := string(b[:len(b)-len(c.prompt)])
	if text == "" {
		return nil
	}
	if !strings.HasSuffix(text, "\r\n") {
		c.t.Fatalf("reply %q does not end in CRLF", text)
	}
	return strings.Split(strings.TrimSuffix(text, "\r\n"), "\r\n")
}

// cmd sends a command and returns its reply's lines.
func (c *client) cmd(line string) []string {
	c.t.Helper()
	if err := c.PrintfLine("%s", line); err != nil {
		c.t.Fatal(err)
	}
	return c.reply()
}

// closing reads what the server sends before it hangs up, failing if it
// does not hang up.
func (c *client) closing() string {
	c.t.Helper()
	b, err := io.ReadAll(c.R)
	if err != nil {
		c.t.Fatalf("want the server to close the connection; got %v after %q", err, b)
	}
	return string(b)
}

// nonLoopback is a loopback listener that says it is listening on a
// public address, to exercise the password rule without one.
type nonLoopback struct{ net.Listener }

func (nonLoopback) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 10026} }

func TestIsLoopback(t *testing.T) {
	tests := []struct {
		a    net.Addr
		want bool
	}{
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}, true},
		{&net.TCPAddr{IP: net.IPv6loopback}, true},
		{&net.TCPAddr{IP: net.IPv4zero}, false},
		{&net.TCPAddr{IP: net.IPv6unspecified}, false},
		{&net.TCPAddr{IP: net.IPv4(192, 0, 2, 1)}, false},
		{&net.UnixAddr{Name: "/run/relaykeeper/admin.sock", Net: "unix"}, true},
	}
	for _, tt := range tests {
		if got := isLoopback(tt.a); got != tt.want {
			t.Errorf("isLoopback(%v) = %v; want %v", tt.a, got, tt.want)
		}
	}
}

func TestPasswordRequiredOffLoopback(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f := newFixture(t, Options{})
	if err := f.srv.ServeText(nonLoopback{l}); !errors.Is(err, ErrPasswordRequired) {
		t.Errorf("ServeText(non-loopback, no password) = %v; want ErrPasswordRequired", err)
	}
	if err := f.srv.ServeAPI(nonLoopback{l}); !errors.Is(err, ErrPasswordRequired) {
		t.Errorf("ServeAPI(non-loopback, no password) = %v; want ErrPasswordRequired", err)
	}
}

func TestShutdown(t *testing.T) {
	f := newFixture(t, Options{})
	f.relay.flushResult = make(chan error) // never answered: only the shutdown ends it
	f.relay.flushStarted = make(chan struct{}, 1)
	addMessage(t, f.spool, "alice@example.com", "bob@example.net", spool.Ready)
	f.serveText(t, nil)
	idle := f.dial(t)
	idle.cmd("pid")
	busy := f.dial(t)
	busy.PrintfLine("flush")
	<-f.relay.flushStarted

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown = %v", err)
	}
	if err := <-f.done; !errors.Is(err, ErrServerClosed) {
		t.Errorf("ServeText after Shutdown = %v; want ErrServerClosed", err)
	}
	// The flush under way was cut short and said so before the close.
	if got := busy.reply(); len(got) != 1 || !strings.HasPrefix(got[0], "error: ") {
		t.Errorf("flush cut by shutdown replied %q; want an error", got)
	}
	busy.closing()
	idle.closing()
	if err := f.srv.ServeText(loopbackListener(t)); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ServeText after Shutdown = %v; want ErrServerClosed", err)
	}
}

// loopbackListener is a fresh loopback listener, closed with the test.
func loopbackListener(t *testing.T) net.Listener {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// TestImports pins the house rule: front ends do not import each other,
// and only the command reads the configuration.
func TestImports(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	const mod = "github.com/relaykeeper/relaykeeper/"
	for _, imp := range pkg.Imports {
		for _, banned := range []string{"internal/smtpd", "internal/pop3", "internal/config", "cmd/"} {
			if strings.HasPrefix(imp, mod+banned) {
				t.Errorf("package admin imports %s", imp)
			}
		}
	}
}

func TestDialAddr(t *testing.T) {
	for in, want := range map[string]string{"0.0.0.0:8025": "127.0.0.1:8025", "[::]:8025": "127.0.0.1:8025",
		"127.0.0.1:8025": "127.0.0.1:8025", "[::1]:8025": "[::1]:8025", "192.0.2.1:80": "192.0.2.1:80"} {
		a, err := net.ResolveTCPAddr("tcp", in)
		if err != nil {
			t.Fatal(err)
		}
		if got := DialAddr(a); got != want {
			t.Errorf("DialAddr(%s) = %s; want %s", in, got, want)
		}
	}
}
