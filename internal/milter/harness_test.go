package milter

import (
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

var _ filter.Filter = (*Milter)(nil)

const testContent = "Received: from client.example by relay.example; Sun, 22 Nov 2026 03:00:00 +0000\r\n" +
	"From: Alice <alice@example.org>\r\n" +
	"To: bob@example.net\r\n" +
	"Subject: hello\r\n" +
	"X-Folded: one\r\n" +
	"\ttwo\r\n" +
	"Date: Sun, 22 Nov 2026 03:00:00 +0000\r\n" +
	"Message-ID: <1@example.org>\r\n" +
	"\r\n" +
	"Hello Bob.\r\n" +
	"\r\n" +
	"Alice\r\n"

// writeMessage writes a message into a fresh spool-like directory and returns
// its two paths. client is the envelope's X-MailRelay-Client.
func writeMessage(t *testing.T, content, client string) (contentPath, envelopePath string) {
	t.Helper()
	dir := t.TempDir()
	contentPath = filepath.Join(dir, "6B0252D2F906FE64.content")
	envelopePath = filepath.Join(dir, "6B0252D2F906FE64.envelope.new")
	env := &spool.Envelope{
		ID:   "6B0252D2F906FE64",
		From: "alice@example.org",
		Recipients: []spool.Recipient{
			{Addr: "bob@example.net", Status: spool.Pending},
			{Addr: "carol@example.com", Status: spool.Pending},
			{Addr: "dave@example.com", Status: spool.Sent},
		},
		BodyType: "8bit",
		Client:   client,
		Helo:     "client.example",
		AuthID:   "alice",
		Arrival:  time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC),
	}
	if err := os.WriteFile(contentPath, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(envelopePath, env.Marshal(), 0o640); err != nil {
		t.Fatal(err)
	}
	return contentPath, envelopePath
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func readEnvelope(t *testing.T, path string) *spool.Envelope {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env, err := spool.Unmarshal(f)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// seen is what a test milter was told.
type seen struct {
	mu      sync.Mutex
	host    string
	family  string
	port    uint16
	addr    string
	helo    string
	from    string
	rcpts   []string
	headers [][2]string
	body    string
	macros  map[string]string
}

// testMilter is an in-process milter (go-milter's server side) whose
// answers the tests choose.
type testMilter struct {
	s    *seen
	rcpt func(rcpt string) gomilter.Response
	eom  func(m *gomilter.Modifier) gomilter.Response
	hang bool // never answer end-of-message
}

func (t *testMilter) macros(m *gomilter.Modifier) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	if t.s.macros == nil {
		t.s.macros = map[string]string{}
	}
	for k, v := range m.Macros {
		t.s.macros[k] = v
	}
}

func (t *testMilter) Connect(host, family string, port uint16, addr net.IP, m *gomilter.Modifier) (gomilter.Response, error) {
	t.macros(m)
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.s.host, t.s.family, t.s.port, t.s.addr = host, family, port, addr.String()
	return gomilter.RespContinue, nil
}

func (t *testMilter) Helo(name string, m *gomilter.Modifier) (gomilter.Response, error) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.s.helo = name
	return gomilter.RespContinue, nil
}

func (t *testMilter) MailFrom(from string, m *gomilter.Modifier) (gomilter.Response, error) {
	t.macros(m)
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.s.from = from
	return gomilter.RespContinue, nil
}

func (t *testMilter) RcptTo(rcpt string, m *gomilter.Modifier) (gomilter.Response, error) {
	t.macros(m)
	t.s.mu.Lock()
	t.s.rcpts = append(t.s.rcpts, rcpt)
	t.s.mu.Unlock()
	if t.rcpt != nil {
		return t.rcpt(rcpt), nil
	}
	return gomilter.RespContinue, nil
}

func (t *testMilter) Header(name, value string, m *gomilter.Modifier) (gomilter.Response, error) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.s.headers = append(t.s.headers, [2]string{name, value})
	return gomilter.RespContinue, nil
}

func (t *testMilter) Headers(textproto.MIMEHeader, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}

func (t *testMilter) BodyChunk(chunk []byte, m *gomilter.Modifier) (gomilter.Response, error) {
	t.s.mu.Lock()
	defer t.s.mu.Unlock()
	t.s.body += string(chunk)
	return gomilter.RespContinue, nil
}

func (t *testMilter) Body(m *gomilter.Modifier) (gomilter.Response, error) {
	t.macros(m)
	if t.hang {
		time.Sleep(5 * time.Second)
	}
	if t.eom != nil {
		return t.eom(m), nil
	}
	return gomilter.RespAccept, nil
}

func (t *testMilter) Abort(*gomilter.Modifier) error { return nil }

// startMilter runs a milter server on a loopback port and returns its
// address in Sendmail's form.
func startMilter(t *testing.T, tm *testMilter) string {
	t.Helper()
	if tm.s == nil {
		tm.s = &seen{}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &gomilter.Server{
		NewMilter: func() gomilter.Milter { return tm },
		Actions: gomilter.OptAddHeader | gomilter.OptChangeHeader | gomilter.OptChangeBody |
			gomilter.OptAddRcpt | gomilter.OptRemoveRcpt | gomilter.OptQuarantine,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return "inet:" + port + "@127.0.0.1"
}

func newMilter(t *testing.T, addr string, opts Options) *Milter {
	t.Helper()
	m, err := New(addr, opts)
	if err != nil {
		t.Fatal(err)
	}
	return m
}
