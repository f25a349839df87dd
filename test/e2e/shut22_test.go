package e2e

import (
	"github.com/relaykeeper/relaykeeper/test/harness"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestShut22CutInData: a client still sending its message text when the
// shutdown grace runs out hears "421 4.3.2 ... shutting down" when it
// reads after its final dot, then the end of the connection; never a
// reset with no reply (the relay used to exit with the session still
// reading, so the kernel reset the connection), and the message's
// content file is not left behind in the spool after a clean exit.
func TestShut22CutInData(t *testing.T) {
	t.Parallel()
	const grace = time.Second
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool,
		"--config", writeConfig(t, "[smtp]\nshutdown_grace = \"1s\"\n"))
	c, greet, err := dialSMTP(r.addr())
	if err != nil {
		t.Fatalf("connect: %v (%q)", err, greet)
	}
	defer c.Close()
	for _, cmd := range []string{"EHLO cut.e2e.test", "MAIL FROM:<alice@example.org>", "RCPT TO:<bob@example.net>", "DATA"} {
		if rep, err := c.cmd("%s", cmd); err != nil || rep.code() >= 400 {
			t.Fatalf("%s: %q, %v", cmd, rep, err)
		}
	}
	io.WriteString(c.conn, "Subject: cut\r\n\r\nfirst line\r\n")
	p := r.current()
	p.Signal(syscall.SIGTERM)
	// The client goes on sending, slowly, past the grace; its writes
	// must not fail (a reset) before it has sent the final dot.
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	for end := time.Now().Add(grace + 500*time.Millisecond); time.Now().Before(end); {
		time.Sleep(100 * time.Millisecond)
		if _, err := io.WriteString(c.conn, "more text\r\n"); err != nil {
			t.Fatalf("writing the message text %v after SIGTERM: %v; want the relay to read on until it says 421", grace, err)
		}
	}
	io.WriteString(c.conn, ".\r\n")
	rep, err := c.read()
	if rep.code() != 421 || !strings.Contains(rep.String(), "4.3.2") {
		t.Errorf("reply after the final dot, past the grace: %q, %v; want 421 4.3.2 (shutting down)", rep, err)
	}
	code, err := p.Wait(10 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("after SIGTERM: exit %d, %v; want 0", code, err)
	}
	if got := spoolFiles(t, spool); len(got) != 0 {
		t.Errorf("spool after a clean exit: %v; want nothing of the transaction cut", got)
	}
	if log := p.Stderr(); !strings.Contains(log, "cut") {
		t.Errorf("the log does not say that a session was cut at the end of the grace:\n%s", log)
	}
}

// TestShut22ProxyUpstreamHangsAtDot: in proxy mode, an upstream that never
// answers the final dot does not hold the shutdown beyond its bounds, and
// the client, whose message the upstream never acknowledged, hears a
// temporary refusal, never a 250 the relay made up and never silence.
func TestShut22ProxyUpstreamHangsAtDot(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{EndOfData: harness.Response{Delay: 40 * time.Second}})
	r := startRelay(t, "127.0.0.1", "--as-proxy", fake.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--config", writeConfig(t, "[smtp]\nshutdown_grace = \"1s\"\n"))
	c, greet, err := dialSMTP(r.addr())
	if err != nil {
		t.Fatalf("connect: %v (%q)", err, greet)
	}
	defer c.Close()
	if rep, err := c.cmd("EHLO proxy.e2e.test"); err != nil || rep.code() != 250 {
		t.Fatalf("EHLO: %q, %v", rep, err)
	}
	final := make(chan reply, 1)
	go func() {
		tx, err := c.send("alice@example.org", []string{"bob@example.net"}, message("hung upstream"))
		if err != nil {
			t.Logf("send: %v", err)
		}
		final <- tx.Final
	}()
	if !waitFor(10*time.Second, func() bool { return fake.Connections() == 1 }) {
		t.Fatal("the upstream was never connected")
	}
	time.Sleep(500 * time.Millisecond) // the final dot is with the upstream
	p := r.current()
	start := time.Now()
	p.Signal(syscall.SIGTERM)
	select {
	case rep := <-final:
		t.Logf("final reply: %q", rep)
		if c := rep.code(); c < 400 || c >= 500 {
			t.Errorf("final reply after SIGTERM, the upstream silent: %q; want a 4xx", rep)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no final reply 15s after SIGTERM")
	}
	code, err := p.Wait(15 * time.Second)
	if err != nil || code != 0 {
		t.Fatalf("after SIGTERM: exit %d, %v; want 0", code, err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("the relay took %v to stop with a 1s grace", d)
	}
}
