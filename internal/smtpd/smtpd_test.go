package smtpd

import (
	"bufio"
	"bytes"
	"context"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/headercheck"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/memlimit"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

type testServer struct {
	addr  string
	spool *spool.Spool
	log   *syncBuf
	srv   *Server
}

func startServer(t testing.TB, mod func(*Options)) *testServer {
	t.Helper()
	sp, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	logBuf := &syncBuf{}
	opts := Options{Domain: "relay.test", Spool: sp, MailLog: maillog.New(logBuf),
		IdleTimeout: 5 * time.Second, MaxMessageSize: 1 << 20, MaxRecipients: 10}
	if mod != nil {
		mod(&opts)
	}
	srv := New(opts)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return &testServer{addr: l.Addr().String(), spool: sp, log: logBuf, srv: srv}
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// dialog writes raw bytes and collects every reply line until the
// connection closes or the deadline passes.
func dialog(t *testing.T, addr, raw string) []string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	go func() { c.Write([]byte(raw)) }()
	var lines []string
	sc := bufio.NewScanner(c)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if strings.HasPrefix(sc.Text(), "221 ") {
			break
		}
	}
	return lines
}

func spooled(t *testing.T, sp *spool.Spool) []string {
	t.Helper()
	ents, err := sp.List()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		b, err := os.ReadFile(sp.ContentPath(e.ID))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	return out
}

func countPrefix(lines []string, p string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, p) {
			n++
		}
	}
	return n
}

func TestAcceptAndReceived(t *testing.T) {
	ts := startServer(t, nil)
	lines := dialog(t, ts.addr, "EHLO client.test\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"+
		"Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n")
	if countPrefix(lines, "250 2.0.0 OK: queued as ") != 1 {
		t.Fatalf("replies %q; want one queued", lines)
	}
	for _, ext := range []string{"PIPELINING", "SIZE 1048576", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8"} {
		if countPrefix(lines, "250-"+ext)+countPrefix(lines, "250 "+ext) != 1 {
			t.Errorf("EHLO lacks %s: %q", ext, lines)
		}
	}
	msgs := spooled(t, ts.spool)
	if len(msgs) != 1 {
		t.Fatalf("spooled %d; want 1", len(msgs))
	}
	if !strings.HasPrefix(msgs[0], "Received: from client.test (unknown [127.0.0.1])\r\n\tby relay.test (relaykeeper) with ESMTP id ") ||
		!strings.Contains(msgs[0], "\tfor <b@example.net>;") ||
		!regexp.MustCompile(`\r\nSubject: x\r\nMessage-ID: <\d{14}\.[0-9A-F]+@relay\.test>\r\nDate: [^\r]+\r\n\r\nbody\r\n$`).MatchString(msgs[0]) {
		t.Errorf("content = %q", msgs[0])
	}
	if !strings.Contains(ts.log.String(), " accept id=") {
		t.Errorf("mail log lacks accept: %s", ts.log)
	}
}

// TestSmuggling sends the end-of-data variants that split one message into
// two on servers that read bare LF or bare CR as a line end. None may end
// the message here: exactly one message, and the smuggled MAIL never runs
// as a command.
func TestSmuggling(t *testing.T) {
	for name, dot := range map[string]string{
		"LF.LF":     "\n.\n",
		"CR.CR":     "\r.\r",
		"CRLF.LF":   "\r\n.\n",
		"LF.CRLF":   "\n.\r\n",
		"CR.CRLF":   "\r.\r\n",
		"CRLF.CR":   "\r\n.\r",
		"CRLF.CRCR": "\r\n.\r\r\n",
	} {
		t.Run(name, func(t *testing.T) {
			ts := startServer(t, nil)
			raw := "EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n" +
				"Subject: one\r\n\r\nfirst" + dot +
				"MAIL FROM:<evil@example.com>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nSubject: smuggled\r\n\r\nsecond\r\n" +
				".\r\nQUIT\r\n"
			lines := dialog(t, ts.addr, raw)
			if n := countPrefix(lines, "250 2.0.0 OK: queued"); n != 1 {
				t.Fatalf("queued %d messages; want 1; replies %q", n, lines)
			}
			msgs := spooled(t, ts.spool)
			if len(msgs) != 1 {
				t.Fatalf("spooled %d; want 1", len(msgs))
			}
			// Stored content has no bare CR or LF left, so nothing
			// downstream can read a line end where we did not.
			c := strings.ReplaceAll(msgs[0], "\r\n", "")
			if strings.ContainsAny(c, "\r\n") {
				t.Errorf("content keeps a bare CR or LF: %q", msgs[0])
			}
			env, _, err := ts.spool.Read(mustOnly(t, ts.spool))
			if err != nil || len(env.Recipients) != 1 || env.Recipients[0].Addr != "b@example.net" {
				t.Errorf("envelope = %+v, %v; want the first transaction's only", env, err)
			}
		})
	}
}

func mustOnly(t *testing.T, sp *spool.Spool) string {
	ents, _ := sp.List()
	if len(ents) != 1 {
		t.Fatalf("spool has %d messages", len(ents))
	}
	return ents[0].ID
}

type fakeAddr string

func (a fakeAddr) Network() string { return "tcp" }
func (a fakeAddr) String() string  { return string(a) }

func TestAllowConnect(t *testing.T) {
	s := New(Options{Domain: "relay.test"})
	for addr, want := range map[string]bool{
		"127.0.0.1:1": true, "[::1]:1": true, "10.1.2.3:1": true, "192.168.0.9:1": true, "172.16.5.5:1": true,
		"[fd00::1]:1": true, "169.254.1.1:1": true, "[::ffff:192.168.1.1]:1": true,
		"203.0.113.9:1": false, "8.8.8.8:1": false, "[2001:db8::1]:1": false, "172.32.0.1:1": false,
	} {
		reply, _, got := s.allowConnect(fakeAddr(addr))
		if got != want {
			t.Errorf("allowConnect(%s) = %v; want %v", addr, got, want)
		}
		if !got && !strings.HasPrefix(reply, "554 5.7.1 ") {
			t.Errorf("reply for %s = %q; want a 554 5.7.1", addr, reply)
		}
	}
	s.opts.RemoteClients = true
	if _, _, ok := s.allowConnect(fakeAddr("203.0.113.9:1")); !ok {
		t.Errorf("with RemoteClients, outside client refused")
	}
	if !IsLocal(netip.MustParseAddr("127.8.9.10")) {
		t.Errorf("127.8.9.10 not local")
	}
}

// TestStorageFailureIs451: a spool that cannot take the message for any
// reason but a lack of space (here: removed under the server) is a local
// error, 451 4.3.0, as Postfix's "queue file write error"; 452 4.3.1
// ("Insufficient system storage") is for a full disk only (the full-disk
// tests in test/e2e, TestDur19FaultInjection).
func TestStorageFailureIs451(t *testing.T) {
	ts := startServer(t, nil)
	os.RemoveAll(ts.spool.Dir())
	lines := dialog(t, ts.addr, "EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nx\r\n.\r\nQUIT\r\n")
	if countPrefix(lines, "451 4.3.0 ") != 1 || countPrefix(lines, "250 2.0.0 OK: queued") != 0 {
		t.Errorf("replies %q; want 451 4.3.0 and no queued", lines)
	}
}

func TestSizeLimit(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.MaxMessageSize = 100 })
	lines := dialog(t, ts.addr, "EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"+
		strings.Repeat("x", 300)+"\r\n.\r\nQUIT\r\n")
	if countPrefix(lines, "552 5.3.4 ") != 1 {
		t.Errorf("replies %q; want 552 5.3.4", lines)
	}
	if msgs := spooled(t, ts.spool); len(msgs) != 0 {
		t.Errorf("spooled %d; want 0", len(msgs))
	}
}

func TestTransactionTimeout(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.TransactionTimeout = 200 * time.Millisecond })
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nslow"))
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			break // closed by the server, as wanted; a deadline error would fail below
		}
	}
	if !strings.Contains(ts.log.String(), "stage=timeout") {
		t.Errorf("mail log lacks the timeout: %s", ts.log)
	}
	if msgs := spooled(t, ts.spool); len(msgs) != 0 {
		t.Errorf("spooled %d; want 0", len(msgs))
	}
}

// TestHeaderChecksSeed runs the seed guide's header_checks file as written:
// a message from a host named sso-api-01 leaves with its name and address
// hidden in relaykeeper's Received header.
func TestHeaderChecksSeed(t *testing.T) {
	hc, err := headercheck.Open("pcre:../headercheck/testdata/header_checks", "")
	if err != nil {
		t.Fatal(err)
	}
	ts := startServer(t, func(o *Options) { o.HeaderChecks = hc })
	lines := dialog(t, ts.addr, "EHLO sso-api-01\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n"+
		"X-Debug: from localhost\r\nSubject: x\r\nMessage-ID: <1@x>\r\nDate: Sat, 5 Dec 2026 00:00:00 +0000\r\n\r\nbody\r\n.\r\nQUIT\r\n")
	if countPrefix(lines, "250 2.0.0 OK: queued") != 1 {
		t.Fatalf("replies %q", lines)
	}
	msgs := spooled(t, ts.spool)
	if len(msgs) != 1 {
		t.Fatalf("spooled %d; want 1", len(msgs))
	}
	m := msgs[0]
	if !strings.HasPrefix(m, "Received: from login.zombig.name (unknown [unknown])") || strings.Contains(m, "sso-api-01") ||
		strings.Contains(m, "127.0.0.1") || strings.Contains(m, "localhost") || !strings.HasSuffix(m, "Subject: x\r\nMessage-ID: <1@x>\r\nDate: Sat, 5 Dec 2026 00:00:00 +0000\r\n\r\nbody\r\n") {
		t.Errorf("content after header_checks = %q", m)
	}
}

var _ SessionBudget = (*memlimit.Budget)(nil)

// countingBudget counts the sessions a server reports.
type countingBudget struct{ open atomic.Int32 }

func (c *countingBudget) SessionOpened() { c.open.Add(1) }
func (c *countingBudget) SessionClosed() { c.open.Add(-1) }

// TestSessionBudget: the server reports every session it lets in and every
// one that ends, and none it refuses.
func TestSessionBudget(t *testing.T) {
	b := &countingBudget{}
	ts := startServer(t, func(o *Options) { o.Memory = b; o.MaxConnections = 1 })
	c := rawDial(t, ts.addr)
	if n := b.open.Load(); n != 1 {
		t.Errorf("with one session open: %d counted; want 1", n)
	}
	refused := dialog(t, ts.addr, "")
	if len(refused) == 0 || !strings.HasPrefix(refused[0], "421") {
		t.Errorf("second connection: %q; want 421", refused)
	}
	if n := b.open.Load(); n != 1 {
		t.Errorf("after a refused connection: %d counted; want 1", n)
	}
	if got := c.cmd("QUIT"); !strings.HasPrefix(got, "221") {
		t.Fatalf("QUIT: %q", got)
	}
	for deadline := time.Now().Add(5 * time.Second); b.open.Load() != 0; {
		if time.Now().After(deadline) {
			t.Fatalf("after QUIT: %d counted; want 0", b.open.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
