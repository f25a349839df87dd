package e2e

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
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
	c := inData(t, r.addr())
	defer c.Close()
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

// TestShut22StopUnderLoad stops the relay with SIGTERM and SIGINT in turn
// while tagging senders and smtp-source load it, in store-and-forward and
// proxy mode, restarting it each time on the same port and spool. Each
// stop ends with exit 0 and "stopped" as the last log line, within the
// grace and the cut's bounds; every message acknowledged with 250 (in
// proxy mode the upstream's) reaches the sink; none is refused with 5xx.
func TestShut22StopUnderLoad(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"store-and-forward", "proxy"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			spool := t.TempDir()
			sink := harness.StartSink(t, harness.SinkOptions{})
			args := []string{"--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--poll", "1"}
			if mode == "proxy" {
				args = []string{"--as-proxy", sink.Addr()}
			}
			r := startRelay(t, "127.0.0.1", append(args, "--config", writeConfig(t, "[smtp]\nshutdown_grace = \"1s\"\n"),
				"--interface", "127.0.0.1", "--spool-dir", spool)...)
			stop := make(chan struct{})
			var wg sync.WaitGroup
			sender := &tagSender{addr: r.addr(), acked: map[string]string{}}
			sender.start(3, stop, &wg)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					if _, err := harness.Source(t, harness.SourceOptions{Addr: r.addr(), Messages: 50, Sessions: 4,
						Size: 2000, Subject: "smtp-source load", Timeout: 20 * time.Second}); err != nil {
						time.Sleep(50 * time.Millisecond)
					}
				}
			}()
			for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGTERM, syscall.SIGINT} {
				time.Sleep(700 * time.Millisecond)
				p := r.current()
				start := time.Now()
				p.Signal(sig)
				code, err := p.Wait(20 * time.Second)
				if err != nil || code != 0 {
					t.Fatalf("stop %d (%v): exit %d, %v; want 0", i+1, sig, code, err)
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("stop %d (%v) took %v with a 1s grace", i+1, sig, d)
				}
				lines := strings.Split(strings.TrimSpace(p.Stderr()), "\n")
				if last := lines[len(lines)-1]; !strings.Contains(last, "msg=stopped") {
					t.Errorf("stop %d (%v): last log line %q; want \"stopped\"", i+1, sig, last)
				}
				r.restart()
			}
			stopLoad(t, stop, &wg, 60*time.Second, "load generators")
			acked := sender.acknowledged(t, 20)
			var miss, dups []string
			waitFor(30*time.Second, func() bool {
				got := map[string]int{}
				for _, m := range sink.Messages() {
					if mm := tagRE.FindStringSubmatch(m.Data); mm != nil {
						got[mm[1]]++
					}
				}
				miss, dups = miss[:0], dups[:0]
				for tag := range acked {
					if got[tag] == 0 {
						miss = append(miss, tag)
					}
				}
				for tag, n := range got {
					if n > 1 {
						dups = append(dups, tag)
					}
				}
				return len(miss) == 0
			})
			if len(miss) > 0 {
				t.Errorf("%d of %d acknowledged messages never reached the sink: %v", len(miss), len(acked), first(miss, 20))
			}
			t.Logf("%d acknowledged, %d delivered twice: %v", len(acked), len(dups), first(dups, 20))
			r.stop(20 * time.Second)
		})
	}
}

// TestShut22AsClientStopped: --as-client stopped by SIGTERM or SIGINT while
// the upstream sits on the final dot exits within the grace and a little,
// with status 1 (not everything was delivered) and its summary line, and
// leaves the message ready for the next run.
func TestShut22AsClientStopped(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			fake := harness.NewFakeSMTP(t, harness.Script{EndOfData: harness.Response{Delay: 40 * time.Second}})
			spool := t.TempDir()
			_, stderr, code := runBinary(t, harness.Binary(t), message("as client"), "submit", "--spool-dir", spool,
				"--from", "alice@example.org", "bob@example.net")
			if code != 0 {
				t.Fatalf("submit: %d %s", code, stderr)
			}
			p := harness.Start(t, harness.Binary(t), "--as-client", fake.Addr(), "--spool-dir", spool,
				"--config", writeConfig(t, "[smtp]\nshutdown_grace = \"1s\"\n"))
			if !waitFor(10*time.Second, func() bool { return fake.Connections() == 1 }) {
				t.Fatal("the upstream was never connected")
			}
			time.Sleep(500 * time.Millisecond)
			start := time.Now()
			p.Signal(sig)
			code, err := p.Wait(15 * time.Second)
			if err != nil || code != 1 {
				t.Fatalf("after %v: exit %d, %v; want 1 (not delivered)", sig, code, err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("--as-client took %v to stop with a 1s grace", d)
			}
			if out := p.Stdout(); !strings.Contains(out, "0 delivered") {
				t.Errorf("stdout %q; want the summary line", out)
			}
			for id, f := range spoolFiles(t, spool) {
				if strings.Join(f, ",") != "content,envelope" {
					t.Errorf("message %s: %v; want it ready again", id, f)
				}
			}
		})
	}
}

// TestShut22PostfixEnforcerStopSays: postfix-enforcer stopped by SIGTERM or
// SIGINT exits 0 and says so as its last log line, naming the signal, as
// the relay does ("stopping signal=..." and "stopped"): the diagnostic log
// ended with its start-up lines, as if it were still running.
func TestShut22PostfixEnforcerStopSays(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			log := writeFile(t, dir, "mail.log", "Dec  7 03:00:00 vm postfix/smtpd[123]: connect from unknown[10.0.0.1]\n", 0o644)
			p := harness.Start(t, harness.Binary(t), "postfix-enforcer", "--log", log, "--state", dir+"/state",
				"--sender-access", dir+"/sender_access", "--welcomelist", dir+"/welcomelist", "--ban-log", dir+"/bans",
				"--smtp", "127.0.0.1:1")
			if !waitFor(15*time.Second, func() bool { return strings.Contains(p.Stderr(), "postfix-enforcer started") }) {
				t.Fatalf("not started:\n%s", p.Stderr())
			}
			p.Signal(sig)
			if code, err := p.Wait(10 * time.Second); code != 0 || err != nil {
				t.Fatalf("after %v: exit %d, %v; want 0", sig, code, err)
			}
			lines := strings.Split(strings.TrimSpace(p.Stderr()), "\n")
			if last := lines[len(lines)-1]; !strings.Contains(last, "stopped") || !strings.Contains(last, sig.String()) {
				t.Errorf("last log line %q; want one saying it stopped on %v", last, sig)
			}
		})
	}
}

// TestShut22SighupUnderLoad: SIGHUP sent again and again while smtp-source
// sends 2,000 messages in 10 sessions, each reusing its connection, and the
// relay forwards them, with a policy table and secrets to re-read: no
// session is dropped, every message reaches the sink.
func TestShut22SighupUnderLoad(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	sink := harness.StartSink(t, harness.SinkOptions{})
	access := writeFile(t, dir, "access", "10.9.9.9 REJECT\n", 0o644)
	auth := writeFile(t, dir, "auth", "server plain alice pw\nserver none 127.0.0.1 localhost\n", 0o600)
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--poll", "1",
		"--server-auth", auth, "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--config", writeConfig(t, "[auth]\nallow_insecure = true\n[policy]\nclient_restrictions = [\"check_client_access texthash:"+access+"\"]\n"))
	p := r.current()
	stop := make(chan struct{})
	hups := make(chan int)
	go func() {
		n := 0
		defer func() { hups <- n }()
		for {
			select {
			case <-stop:
				return
			case <-time.After(10 * time.Millisecond):
				p.Signal(syscall.SIGHUP)
				n++
			}
		}
	}()
	out, err := harness.Source(t, harness.SourceOptions{Addr: r.addr(), Messages: 2000, Sessions: 10, Reuse: true,
		Size: 3000, Subject: "hup load", Timeout: 60 * time.Second})
	close(stop)
	n := <-hups
	if err != nil {
		t.Fatalf("smtp-source under %d SIGHUPs: %v\n%s", n, err, out)
	}
	sink.WaitCount(t, 2000, 60*time.Second)
	if !p.Running() {
		t.Fatal("the relay exited")
	}
	t.Logf("%d SIGHUPs during the load", n)
	r.stop(20 * time.Second)
}

// TestShut22RestartKeepsNewPidFile: a restart by an init script (SIGTERM to
// the old relay, then a new start at once) finds the old relay's port free
// as soon as it stops listening, while it still lets a session finish its
// message within the grace; the new relay writes its pid into --pid-file,
// and the old one, exiting later, removed that file on its way out, so the
// running relay had none (and the next "kill $(cat PIDFILE)" found nothing).
func TestShut22RestartKeepsNewPidFile(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "relaykeeper.pid")
	spool := t.TempDir()
	cfg := writeConfig(t, "[smtp]\nshutdown_grace = \"3s\"\n")
	old := startRelay(t, "127.0.0.1", "--as-server", "--pid-file", pidFile, "--config", cfg,
		"--interface", "127.0.0.1", "--spool-dir", spool)
	waitPidFile(t, pidFile, old.current().PID())
	c := inData(t, old.addr())
	defer c.Close()
	p := old.current()
	p.Signal(syscall.SIGTERM) // the session in DATA keeps it for the grace
	if !waitFor(5*time.Second, func() bool { return strings.Contains(p.Stderr(), "stopping") }) {
		t.Fatal("the old relay did not start stopping")
	}
	cur := startRelay(t, "127.0.0.1", "--as-server", "--pid-file", pidFile, "--config", cfg,
		"--interface", "127.0.0.1", "--spool-dir", spool)
	waitPidFile(t, pidFile, cur.current().PID())
	io.WriteString(c.conn, "Subject: slow\r\n\r\nbody\r\n.\r\n")
	if rep, err := c.read(); rep.code() != 250 {
		t.Errorf("the old relay's reply to the final dot within the grace: %q, %v; want 250", rep, err)
	}
	if code, err := p.Wait(15 * time.Second); err != nil || code != 0 {
		t.Fatalf("old relay: exit %d, %v; want 0", code, err)
	}
	b, err := os.ReadFile(pidFile)
	if want := strconv.Itoa(cur.current().PID()); err != nil || strings.TrimSpace(string(b)) != want {
		t.Errorf("pid file after the old relay exited: %q, %v; want the running relay's %s", b, err, want)
	}
	cur.stop(20 * time.Second)
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file after the running relay stopped: %v; want it removed", err)
	}
}

// inData connects to addr and goes as far as the 354 to DATA.
func inData(t *testing.T, addr string) *smtpClient {
	t.Helper()
	c, greet, err := dialSMTP(addr)
	if err != nil {
		t.Fatalf("connect: %v (%q)", err, greet)
	}
	for _, cmd := range []string{"EHLO shut22.e2e.test", "MAIL FROM:<alice@example.org>", "RCPT TO:<bob@example.net>", "DATA"} {
		if rep, err := c.cmd("%s", cmd); err != nil || rep.code() >= 400 {
			c.Close()
			t.Fatalf("%s: %q, %v", cmd, rep, err)
		}
	}
	return c
}

// TestShut22DocsSignals: what the documents say about signals is what the
// relay does. docs/operations.md named the grace "[process]
// shutdown_grace" (it is [smtp]); docs/postfix-migration.md said that the
// --server-auth and --client-auth secrets need a restart, and the man
// page's SIGHUP left them and the server certificate out, while SIGHUP
// re-reads them (TestOps20ReloadTableSecrets); and the end of the grace
// now says 421 (TestShut22CutInData) where the documents said "cut".
func TestShut22DocsSignals(t *testing.T) {
	read := func(name string) string {
		b, err := os.ReadFile("../../" + name)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, name := range []string{"README.md", "docs/operations.md", "docs/limits.md", "docs/flow.md", "docs/man/relaykeeper.8"} {
		doc := read(name)
		if strings.Contains(doc, "[process] shutdown_grace") {
			t.Errorf("%s names the grace [process] shutdown_grace; it is [smtp] shutdown_grace", name)
		}
		if strings.Contains(doc, "end of the grace is cut") || strings.Contains(doc, "end of the grace has its calls cancelled and is cut") {
			t.Errorf("%s says a session open at the end of the grace is cut without a word; it hears 421 4.3.2", name)
		}
	}
	for _, row := range strings.Split(read("docs/postfix-migration.md"), "\n") {
		if strings.HasPrefix(row, "| `postfix reload`") {
			before, _, _ := strings.Cut(row, "need a restart")
			if clause := before[strings.LastIndex(before, ";")+1:]; strings.Contains(clause, "secrets") {
				t.Errorf("docs/postfix-migration.md says the secrets files need a restart; SIGHUP re-reads them:\n%s", row)
			}
		}
	}
	man := read("docs/man/relaykeeper.8")
	_, hup, _ := strings.Cut(man, `\fBSIGHUP\fR`)
	hup, _, _ = strings.Cut(hup, ".TP")
	for _, want := range []string{"secrets", "certificate"} {
		if !strings.Contains(hup, want) {
			t.Errorf("relaykeeper(8) on SIGHUP does not mention the %s it re-reads:%s", want, hup)
		}
	}
}

// TestShut22StopClosesSMTPFirst: SIGTERM stops the relay accepting SMTP at
// once, also while a POP3 client is slow to take a large message. The
// POP3 server's shutdown was waited for, for the whole grace, before the
// SMTP listeners were closed: new SMTP sessions were accepted during the
// grace, and then cut at once, with no grace left for them.
func TestShut22StopClosesSMTPFirst(t *testing.T) {
	t.Parallel()
	dir, spool := t.TempDir(), t.TempDir()
	auth := writeFile(t, dir, "pop.auth", "server plain alice pw\n", 0o600)
	big := message("big") + strings.Repeat(strings.Repeat("x", 998)+"\n", 40000) // 40 MB
	if _, stderr, code := runBinary(t, harness.Binary(t), big, "submit", "--spool-dir", spool,
		"--from", "alice@example.org", "bob@example.net"); code != 0 {
		t.Fatalf("submit: %d %s", code, stderr)
	}
	popPort := harness.FreePort(t)
	r := startRelay(t, "127.0.0.1", "--as-server", "--pop", "--pop-port", strconv.Itoa(popPort), "--pop-auth", auth,
		"--interface", "127.0.0.1", "--spool-dir", spool, "--config", writeConfig(t, "[smtp]\nshutdown_grace = \"4s\"\n"))
	popAddr := "127.0.0.1:" + strconv.Itoa(popPort)
	harness.WaitPort(t, popAddr, 5*time.Second)
	pc, err := net.Dial("tcp", popAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.(*net.TCPConn).SetReadBuffer(4096)
	io.WriteString(pc, "USER alice\r\nPASS pw\r\nRETR 1\r\n") // and read nothing
	time.Sleep(time.Second)
	p := r.current()
	start := time.Now()
	p.Signal(syscall.SIGTERM)
	if !waitFor(5*time.Second, func() bool { return strings.Contains(p.Stderr(), "stopping") }) {
		t.Fatal("no \"stopping\" line")
	}
	time.Sleep(300 * time.Millisecond)
	if c, err := net.DialTimeout("tcp", r.addr(), time.Second); err == nil {
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		greet, _ := bufio.NewReader(c).ReadString('\n')
		c.Close()
		t.Errorf("an SMTP connection %v after SIGTERM was accepted (greeting %q); want the listener closed", time.Since(start).Round(time.Millisecond), greet)
	}
	if code, err := p.Wait(20 * time.Second); err != nil || code != 0 {
		t.Fatalf("exit %d, %v; want 0", code, err)
	}
}

// TestShut22CutDeliveryNotAnAttempt: a delivery that the relay's own
// shutdown cuts short (the upstream sits on the final dot past the grace)
// is no attempt: the message is ready again for the next start at once,
// not after a back-off, its attempts are not counted, and its envelope
// and the mail log do not blame the upstream with "i/o timeout", the
// deadline the relay itself set to end the session.
func TestShut22CutDeliveryNotAnAttempt(t *testing.T) {
	t.Parallel()
	fake := harness.NewFakeSMTP(t, harness.Script{EndOfData: harness.Response{Delay: 40 * time.Second}})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", fake.Addr(), "--forward-on-disconnect",
		"--config", writeConfig(t, "[smtp]\nshutdown_grace = \"1s\"\n"), "--interface", "127.0.0.1", "--spool-dir", spool)
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("cut delivery")).Final)
	waitSpool(t, spool, 10*time.Second, id+" claimed (.busy)", func(f map[string][]string) bool {
		return slices.Equal(f[id], []string{"content", "envelope.busy"})
	})
	time.Sleep(500 * time.Millisecond) // the final dot is with the upstream
	p := r.current()
	p.Signal(syscall.SIGTERM)
	if code, err := p.Wait(15 * time.Second); err != nil || code != 0 {
		t.Fatalf("after SIGTERM: exit %d, %v; want 0", code, err)
	}
	env, err := os.ReadFile(filepath.Join(spool, id+".envelope"))
	if err != nil {
		t.Fatalf("the message is not ready again: %v (spool %v)", err, spoolFiles(t, spool))
	}
	for _, line := range strings.Split(string(env), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "X-Relaykeeper-Next-Attempt: "); ok {
			if at, err := time.Parse(time.RFC3339Nano, v); err == nil && time.Until(at) > 5*time.Second {
				t.Errorf("next attempt %v from now; want at once: the shutdown, not the upstream, ended the delivery", time.Until(at).Round(time.Second))
			}
		}
		if strings.HasPrefix(line, "X-Relaykeeper-Attempts: ") && strings.TrimSpace(line) != "X-Relaykeeper-Attempts: 0" {
			t.Errorf("envelope %q; want no attempt counted", strings.TrimSpace(line))
		}
	}
	if strings.Contains(string(env), "i/o timeout") || strings.Contains(p.Stderr(), "i/o timeout") {
		t.Errorf("the upstream is blamed with the relay's own deadline (i/o timeout):\n%s\n%s", env, p.Stderr())
	}
}

// TestShut22FilterHangsAtStop: a --filter that never ends does not hold
// the relay's stop beyond the grace and the cut: the client waiting at
// its final dot hears a temporary refusal, the relay exits 0, and the
// message is not kept (it was never acknowledged), and the filter does not
// outlive the relay.
func TestShut22FilterHangsAtStop(t *testing.T) {
	t.Parallel()
	dir, spool := t.TempDir(), t.TempDir()
	pidFile := filepath.Join(dir, "filter.pid")
	filter := writeFile(t, dir, "hang.sh", "#!/bin/sh\necho $$ > "+pidFile+"\nexec sleep 60\n", 0o755)
	r := startRelay(t, "127.0.0.1", "--as-server", "--filter", filter, "--interface", "127.0.0.1", "--spool-dir", spool,
		"--config", writeConfig(t, "[smtp]\nshutdown_grace = \"1s\"\n"))
	c := inData(t, r.addr())
	defer c.Close()
	io.WriteString(c.conn, "Subject: hang\r\n\r\nbody\r\n.\r\n")
	time.Sleep(500 * time.Millisecond) // the filter runs
	p := r.current()
	start := time.Now()
	p.Signal(syscall.SIGTERM)
	if rep, err := c.read(); rep.code()/100 != 4 {
		t.Errorf("reply to the final dot, the filter hanging past the grace: %q, %v; want 4xx", rep, err)
	}
	if code, err := p.Wait(15 * time.Second); err != nil || code != 0 {
		t.Fatalf("exit %d, %v; want 0", code, err)
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Errorf("the relay took %v to stop with a 1s grace", d)
	}
	if got := spoolFiles(t, spool); len(got) != 0 {
		t.Errorf("spool after exit: %v; want nothing of the refused message", got)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("the filter did not run: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	if pid > 0 && syscall.Kill(pid, 0) == nil {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("the filter (pid %d) outlived the relay", pid)
	}
}

// TestShut22UnwritableSpool: a spool directory the relay may not write
// (another user's, a read-only mount) stops the start with exit 2 and the
// directory named, and --check says so; the relay used to warn about its
// journal and pid file, say "started" (and READY=1 to systemd), and then
// answer every message 451, for ever.
func TestShut22UnwritableSpool(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	spool := filepath.Join(base, "spool")
	if err := os.Mkdir(spool, 0o755); err != nil {
		t.Fatal(err)
	}
	attr := &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	bin := harness.Binary(t)
	if os.Geteuid() == 0 {
		// Root writes anywhere: the relay runs as nobody, the spool root's.
		attr.Credential = &syscall.Credential{Uid: 65534, Gid: 65534}
		// t.TempDir's are 0700, up to the test's own directory under
		// os.TempDir (never that one: it is everybody's).
		for d := base; d != filepath.Clean(os.TempDir()) && d != "/"; d = filepath.Dir(d) {
			os.Chmod(d, 0o755)
		}
		// The harness's own build lies in a 0700 directory nobody cannot
		// enter: a copy here, which nobody may run.
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		bin = filepath.Join(base, "relaykeeper")
		if err := os.WriteFile(bin, b, 0o755); err != nil {
			t.Fatal(err)
		}
	} else if err := os.Chmod(spool, 0o555); err != nil {
		t.Fatal(err)
	}
	args := []string{"--as-server", "--interface", "127.0.0.1", "--port", strconv.Itoa(harness.FreePort(t)), "--spool-dir", spool}
	for _, check := range []bool{true, false} {
		a := args
		if check {
			a = append(slices.Clone(args), "--check")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		cmd := exec.CommandContext(ctx, bin, a...)
		cmd.SysProcAttr = attr
		out, err := cmd.CombinedOutput()
		timedOut := ctx.Err() != nil
		cancel()
		code := cmd.ProcessState.ExitCode()
		if timedOut {
			t.Errorf("check %v: still running after 15s, on a spool it may not write:\n%s", check, out)
			continue
		}
		if code != 2 || !strings.Contains(string(out), spool) || !strings.Contains(string(out), "permission denied") {
			t.Errorf("check %v: exit %d (%v), output:\n%s\nwant exit 2 naming %s: permission denied", check, code, err, out, spool)
		}
	}
}

// TestShut22PortTakenNamesTheServer: a POP3 or admin port that is taken
// stops the start with exit 2 and names the switch of the server that
// cannot listen, as --admin-http's error does; it said only "cannot listen
// on ADDR", the words of the SMTP listener's error.
func TestShut22PortTakenNamesTheServer(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	taken := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	auth := writeFile(t, t.TempDir(), "pop.auth", "server plain alice pw\n", 0o600)
	for sw, extra := range map[string][]string{
		"--pop-port": {"--pop", "--pop-port", taken, "--pop-auth", auth},
		"--admin":    {"--admin", taken},
	} {
		args := append([]string{"--as-server", "--interface", "127.0.0.1", "--port", strconv.Itoa(harness.FreePort(t)),
			"--spool-dir", t.TempDir()}, extra...)
		_, stderr, code := runBinary(t, harness.Binary(t), "", args...)
		if code != 2 || !strings.Contains(stderr, sw+": ") || !strings.Contains(stderr, "address already in use") {
			t.Errorf("%s on a taken port: exit %d, stderr %q; want 2 and the switch named", sw, code, stderr)
		}
	}
}
