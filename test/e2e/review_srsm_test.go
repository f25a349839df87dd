package e2e

import (
	"fmt"
	"net"
	"net/textproto"
	"strings"
	"sync"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// slowMilter records the connect step's macros and hangs at the end of
// the message.
type slowMilter struct {
	mu     *sync.Mutex
	macros *map[string]string
}

func (m *slowMilter) Connect(_, _ string, _ uint16, _ net.IP, mod *gomilter.Modifier) (gomilter.Response, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	*m.macros = mod.Macros
	return gomilter.RespContinue, nil
}
func (m *slowMilter) Helo(string, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}
func (m *slowMilter) MailFrom(string, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}
func (m *slowMilter) RcptTo(string, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}
func (m *slowMilter) Header(string, string, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}
func (m *slowMilter) Headers(textproto.MIMEHeader, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}
func (m *slowMilter) BodyChunk([]byte, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}
func (m *slowMilter) Abort(*gomilter.Modifier) error { return nil }
func (m *slowMilter) Body(*gomilter.Modifier) (gomilter.Response, error) {
	time.Sleep(20 * time.Second)
	return gomilter.RespAccept, nil
}

// TestMilterConfigKeys: the [milter] section of docs/milter.md, timeouts
// and macros included, is accepted, and they take effect: a milter that
// hangs past command_timeout gives default_action (451) in seconds, and
// the milter sees the configured macros. The relay refused to start with
// "milter.command_timeout: unknown key".
func TestMilterConfigKeys(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	macros := map[string]string{}
	srv := &gomilter.Server{NewMilter: func() gomilter.Milter { return &slowMilter{mu: &mu, macros: &macros} }}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	sink := harness.NewFakeSMTP(t, harness.Script{})
	cfg := writeConfig(t, fmt.Sprintf(`[milter]
server = ["inet:%s@127.0.0.1"]
default_action = "tempfail"
connect_timeout = "30s"
command_timeout = "2s"
content_timeout = "2s"
macros = { j = "relay.example.org", daemon_name = "relaykeeper-2" }
`, port))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--no-bounces",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	start := time.Now()
	tx, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, message("hangs"))
	if err == nil || !strings.HasPrefix(tx.Final.String(), "451") || time.Since(start) > 15*time.Second {
		t.Errorf("final reply %v after %v (%v); want 451 within command_timeout", tx.Final, time.Since(start).Round(time.Second), err)
	}
	mu.Lock()
	defer mu.Unlock()
	if macros["j"] != "relay.example.org" || macros["{daemon_name}"] != "relaykeeper-2" {
		t.Errorf("the milter saw macros %v; want j=relay.example.org and {daemon_name}=relaykeeper-2", macros)
	}
}
