package e2e

import (
	"bufio"
	"crypto/tls"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// prx22Upstream is an upstream with STARTTLS whose replies to the message
// text are scripted: early is written after the first octets of the text
// (nothing when empty), final after the final dot.
type prx22Upstream struct {
	address      string
	cfg          *tls.Config
	early, final string

	mu   sync.Mutex
	dots int // final dots read
}

func newPrx22Upstream(t *testing.T, early, final string) *prx22Upstream {
	t.Helper()
	certPath, keyPath, _ := certFiles(t, t.TempDir())
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	u := &prx22Upstream{cfg: &tls.Config{Certificates: []tls.Certificate{cert}}, early: early, final: final}
	u.address = harness.ServeTCP(t, u.serve)
	return u
}

func (u *prx22Upstream) addr() string { return u.address }

func (u *prx22Upstream) finalDots() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.dots
}

func (u *prx22Upstream) serve(nc net.Conn) {
	var c net.Conn = nc
	defer func() { c.Close() }()
	r := bufio.NewReader(c)
	say := func(lines ...string) bool {
		c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		_, err := c.Write([]byte(strings.Join(lines, "\r\n") + "\r\n"))
		return err == nil
	}
	say("220 up.test ESMTP")
	for {
		c.SetReadDeadline(time.Now().Add(60 * time.Second))
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch verb := strings.ToUpper(strings.Fields(line + " x")[0]); verb {
		case "EHLO":
			say("250-up.test", "250-PIPELINING", "250-8BITMIME", "250-ENHANCEDSTATUSCODES", "250 STARTTLS")
		case "STARTTLS":
			say("220 2.0.0 go ahead")
			tc := tls.Server(nc, u.cfg)
			if tc.Handshake() != nil {
				return
			}
			c, r = tc, bufio.NewReader(tc)
		case "MAIL", "RCPT", "RSET", "NOOP":
			say("250 2.0.0 ok")
		case "QUIT":
			say("221 2.0.0 bye")
			return
		case "DATA":
			say("354 go ahead")
			n, early := 0, u.early != ""
			for {
				l, err := r.ReadString('\n')
				if err != nil {
					return
				}
				if n += len(l); early && n > 1000 {
					// Answered in the middle of the text, then a
					// pause, so that the reply is there long before
					// the relay's last octet.
					early = false
					say(u.early)
					time.Sleep(300 * time.Millisecond)
				}
				if l == ".\r\n" {
					break
				}
			}
			u.mu.Lock()
			u.dots++
			u.mu.Unlock()
			say(u.final)
		default:
			say("502 5.5.1 no")
		}
	}
}

// TestPrx22EarlyReplyOverTLS: an upstream reached over STARTTLS that
// answers 250 in the middle of the text and refuses the message at its
// final dot has not taken it. The client used to hear the early 250 (the
// relay read it as the reply to the final dot: under TLS it never looked
// for a reply before the end of the text), for a message the upstream
// refused; it must hear 451 4.4.1, as over plain SMTP, and the mail log
// say deferred.
func TestPrx22EarlyReplyOverTLS(t *testing.T) {
	t.Parallel()
	up := newPrx22Upstream(t, "250 2.0.0 early ok", "554 5.7.1 refused after all")
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-proxy", up.addr(), "--client-tls", "--interface", "127.0.0.1", "--spool-dir", spool)
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
	mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
	mustCmd(t, c, "354", "DATA")
	// Larger than what the sockets hold, so that the relay is still
	// writing when the early reply comes.
	body := strings.Repeat(strings.Repeat("x", 76)+"\r\n", 6<<20/78)
	rep, err := c.cmd("%s", "Subject: early\r\n\r\n"+body+".")
	if err != nil {
		t.Fatalf("final dot: %v", err)
	}
	if rep.code()/100 == 2 {
		t.Errorf("the client heard %q for a message the upstream answered early and then refused (%d final dots read); want 451 4.4.1",
			rep, up.finalDots())
	} else if !strings.HasPrefix(rep.String(), "451 4.4.1 ") {
		t.Errorf("reply to the final dot = %q; want 451 4.4.1", rep)
	}
	if e := r.waitEvent("proxy", 10*time.Second, nil); e.Get("result") != "deferred" {
		t.Errorf("proxy line %v; want result=deferred", e.Fields)
	}
	checkSpoolEmpty(t, spool)
}

// TestPrx22UpstreamLostAtRcpt: the upstream's session ends at one RCPT
// (the connection closed without a reply). That recipient hears 451 4.4.1,
// as before; the transaction then goes on, said again on a fresh session
// (MAIL and the recipients accepted so far), so that the next recipients
// and the message still reach the upstream. Before, every later RCPT and
// the final dot heard "451 4.3.0 Local error in processing", which the
// mail log did not show, after the client had sent its whole text. When
// no fresh session can be had, the client hears 451 4.4.1 (logged) for
// the rest of the transaction.
func TestPrx22UpstreamLostAtRcpt(t *testing.T) {
	t.Parallel()
	for _, down := range []bool{false, true} {
		name := map[bool]string{false: "fresh session", true: "upstream down"}[down]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var lost sync.Mutex
			gone := false
			up := harness.NewFakeSMTP(t, harness.Script{Decide: func(stage harness.Stage, _ harness.Transaction, arg string) harness.Response {
				lost.Lock()
				defer lost.Unlock()
				switch {
				case stage == harness.StageRcpt && arg == "lost@example.net":
					gone = down
					return harness.Response{Fault: harness.Close}
				case stage == harness.StageConnect && gone:
					return harness.Response{Fault: harness.Close421, Reply: "421 4.3.2 down for maintenance"}
				}
				return harness.Response{}
			}})
			spool := t.TempDir()
			r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", spool)
			c := mustDial(t, r.addr(), "127.0.0.1")
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
			mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
			if rep, _ := c.cmd("RCPT TO:<lost@example.net>"); !strings.HasPrefix(rep.String(), "451 4.4.1 ") {
				t.Errorf("RCPT of the recipient the upstream went away at = %q; want 451 4.4.1", rep)
			}
			rep, _ := c.cmd("RCPT TO:<carol@example.net>")
			final := reply{}
			if rep.code() == 250 || rep.code() == 451 {
				mustCmd(t, c, "354", "DATA")
				final, _ = c.cmd("%s", "Subject: lost\r\n\r\ntext\r\n.")
			}
			if !down {
				if rep.code() != 250 || final.code() != 250 {
					t.Fatalf("after the upstream's session ended at RCPT: RCPT %q, final dot %q; want 250 and the upstream's 250", rep, final)
				}
				var got []harness.Transaction
				for _, tx := range up.Transactions() {
					if tx.Accepted() {
						got = append(got, tx)
					}
				}
				if len(got) != 1 || !slices.Equal(got[0].To(), []string{"bob@example.net", "carol@example.net"}) {
					t.Errorf("the upstream accepted %d messages (%v); want one, for bob and carol", len(got), got)
				}
			} else {
				for what, rep := range map[string]reply{"next RCPT": rep, "final dot": final} {
					if !strings.HasPrefix(rep.String(), "451 4.4.1 ") {
						t.Errorf("%s after the upstream went away = %q; want 451 4.4.1", what, rep)
					}
				}
				if e := r.waitEvent("proxy", 10*time.Second, nil); e.Get("result") != "deferred" || !strings.HasPrefix(e.Get("reply"), "451 4.4.1 ") {
					t.Errorf("proxy line %v; want result=deferred and the 451 4.4.1 the client heard", e.Fields)
				}
				if len(rejectsTo(r, "rcpt", "carol@example.net")) != 1 {
					t.Errorf("no reject line for the recipient refused after the upstream went away")
				}
			}
			checkSpoolEmpty(t, spool)
		})
	}
}

// TestPrx22ProxyHold: header_checks' HOLD ("accept the message and keep it
// on hold") in proxy mode. The proxy used to send the held message
// upstream at once, saying nothing of the HOLD; now it keeps the message
// in the spool, held (the upstream's transaction is reset), the client
// hears the relay's own 250, and the mail log has its hold line. Released,
// it goes to the upstream.
func TestPrx22ProxyHold(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	hc := writeFile(t, t.TempDir(), "header_checks", "/^Subject: .*hold me/ HOLD held for review\n", 0o644)
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", spool,
		"--config", writeConfig(t, "[policy]\nheader_checks = \"pcre:"+hc+"\"\n"))
	tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, "Subject: please hold me\n\nHeld.\n")
	id := queuedID(t, tx.Final)
	if f := opsSpool(t, spool)[id]; !slices.Equal(f, []string{"content", "envelope.held"}) {
		t.Errorf("HOLD through the proxy: spool has %q for %s; want content, envelope.held", f, id)
	}
	r.waitEvent("hold", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == id })
	time.Sleep(500 * time.Millisecond)
	for _, tx := range up.Transactions() {
		if tx.Accepted() {
			t.Fatalf("the upstream got the held message: %v", tx)
		}
	}
	// Released, it goes on.
	if out, errOut, code := runBinary(t, harness.Binary(t), "", "queue", "release", "--spool-dir", spool, id); code != 0 {
		t.Fatalf("queue release: exit %d: %s%s", code, out, errOut)
	}
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, "Subject: next\n\nNext.\n")
	if !waitFor(15*time.Second, func() bool { return up.AcceptedFrom()["alice@example.org"] == 2 }) {
		t.Errorf("the released message did not reach the upstream: %v", up.AcceptedFrom())
	}
}

// TestPrx22UpstreamReplyControls: a reply the proxy passes on from the
// upstream is passed as text only. An upstream's reply line holding a bare
// CR, a NUL or an escape went to the client octet for octet: a client that
// ends a line at a bare CR read "250 2.0.0 fake ok" as a reply of its own,
// which then answered its next command. RFC 5321 allows only printable
// ASCII and tabs in a reply's text; the others become "?", as Postfix's
// printable() makes them, and the code stays the upstream's.
func TestPrx22UpstreamReplyControls(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{
		RcptFor:   map[string]harness.Response{"ctl@example.net": {Reply: "550 5.1.1 no\rsuch\x00user"}},
		EndOfData: harness.Response{Reply: "550 5.7.1 bad\r250 2.0.0 fake ok\x1b[0m\x7f"},
	})
	r, _ := startProxy(t, up.Addr())
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
	mustCmd(t, c, "550 5.1.1 no?such?user", "RCPT TO:<ctl@example.net>")
	mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
	mustCmd(t, c, "354", "DATA")
	mustCmd(t, c, "550 5.7.1 bad?250 2.0.0 fake ok?[0m?", "Subject: controls\r\n\r\ntext\r\n.")
	mustCmd(t, c, "250", "NOOP")
}
