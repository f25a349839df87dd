package e2e

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestLimitConnectionsPerIP: with max_connections_per_ip = 2, a third
// concurrent connection from 127.0.0.1 hears 421 4.7.0 at once and is
// closed, logged as a connect-stage reject; another address is let in;
// when one of the two closes, 127.0.0.1 may connect again.
func TestLimitConnectionsPerIP(t *testing.T) {
	t.Parallel()
	// 127.0.0.1 must be outside mynetworks: trusted networks are exempt
	// from the limit, as in Postfix.
	r := startPolicyRelay(t, "[policy]\nmax_connections_per_ip = 2\n"+outsideNetworks)
	c1 := mustDial(t, r.addr(), "127.0.0.1")
	mustDial(t, r.addr(), "127.0.0.1")
	c3, greet, err := dialFrom(r.addr(), "127.0.0.1")
	want := "421 4.7.0 relay.test: too many connections from 127.0.0.1; try again later"
	if err != nil || greet.String() != want {
		t.Errorf("third connection from 127.0.0.1: greeting %q, %v; want %q", greet, err, want)
	}
	if c3 != nil {
		if _, err := c3.read(); !errors.Is(err, io.EOF) {
			t.Errorf("third connection after its 421: read %v; want EOF (closed)", err)
		}
		c3.Close()
	}
	e := r.waitEvent("reject", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("stage") == "connect" })
	if e.Get("reply") != want || !strings.HasPrefix(e.Get("client"), "127.0.0.1:") {
		t.Errorf("connect reject line %v; want client=127.0.0.1:PORT reply=%q", e.Fields, want)
	}
	mustDial(t, r.addr(), "127.0.0.2")

	c1.cmd("QUIT")
	c1.Close()
	var again *smtpClient
	ok := waitFor(5*time.Second, func() bool {
		c, greet, err := dialFrom(r.addr(), "127.0.0.1")
		if err != nil || greet.code() != 220 {
			if c != nil {
				c.Close()
			}
			return false
		}
		again = c
		return true
	})
	if !ok {
		t.Errorf("127.0.0.1 still refused 5s after one of its two connections closed")
	} else {
		again.Close()
	}
}

// TestLimitMessageSize: with --size 1000, EHLO announces SIZE 1000, a MAIL
// FROM with SIZE=5000 is refused, and a 5 KB message sent without SIZE is
// refused after its dot with 552 5.3.4; nothing is kept.
func TestLimitMessageSize(t *testing.T) {
	t.Parallel()
	r := startPolicyRelay(t, "", "--size", "1000")
	c := mustDial(t, r.addr(), "127.0.0.1")
	if kw := ehloKeywords(t, c); kw["SIZE"] != "1000" {
		t.Errorf("EHLO SIZE %q; want 1000", kw["SIZE"])
	}
	mustCmd(t, c, "552 5.3.4 Max message size exceeded", "MAIL FROM:<big@example.org> SIZE=5000")
	body := message("too big") + strings.Repeat(strings.Repeat("x", 78)+"\n", 64) // 5 KB
	tx, err := c.send("big@example.org", []string{"bob@example.net"}, body)
	if err == nil || tx.Final.String() != "552 5.3.4 Maximum message size exceeded" {
		t.Errorf("a 5 KB message with --size 1000: %v, final reply %q; want \"552 5.3.4 Maximum message size exceeded\"", err, tx.Final)
	}
	// The session goes on: a small message is still accepted.
	mustCmd(t, c, "250", "RSET")
	if _, err := c.send("small@example.org", []string{"bob@example.net"}, "Subject: small\n\nok\n"); err != nil {
		t.Errorf("a small message after the big one: %v", err)
	}
	es := r.events("reject")
	if len(es) == 0 || es[len(es)-1].Get("stage") != "data" || es[len(es)-1].Get("reply") != tx.Final.String() {
		t.Errorf("reject lines %v; want a stage=data line with reply=%q", fields(es), tx.Final.String())
	}
	if files := spoolFiles(t, r.spool); len(files) != 1 {
		t.Errorf("spool holds %v; want only the small message", files)
	}
}

// TestLimitRecipients: with max_recipients = 3 the fourth RCPT gets 452
// 4.5.3, and the message goes to the first three.
func TestLimitRecipients(t *testing.T) {
	t.Parallel()
	r := startPolicyRelay(t, "[smtp]\nmax_recipients = 3\n")
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	tx, err := c.send("alice@example.org", []string{"r1@example.net", "r2@example.net", "r3@example.net", "r4@example.net"}, message("rcpt limit"))
	if err != nil {
		t.Fatalf("send: %v; %+v", err, tx)
	}
	if got := tx.Rcpt[3].String(); got != "452 4.5.3 Maximum limit of 3 recipients reached" {
		t.Errorf("fourth RCPT = %q; want \"452 4.5.3 Maximum limit of 3 recipients reached\"", got)
	}
	id := queuedID(t, tx.Final)
	_, env := readAnyEnvelope(t, r.spool, id)
	if got := env.all("X-MailRelay-To-Remote"); strings.Join(got, ",") != "r1@example.net,r2@example.net,r3@example.net" {
		t.Errorf("spooled recipients %q; want the first three", got)
	}
}

// TestLimitHardErrors: with hard_error_limit = 3, as Postfix's
// smtpd_hard_error_limit: the first two refused RCPTs get their own reply;
// when the third refusal reaches the limit the client hears that refusal,
// then 421 4.7.0, and the connection is closed: a command pipelined behind
// it (here a RCPT for a relay domain, which would be accepted) is never
// run or answered. The mail log says what the client heard.
func TestLimitHardErrors(t *testing.T) {
	t.Parallel()
	r := startPolicyRelay(t, "[policy]\n"+outsideNetworks+"relay_domains = [\"relay.example\"]\nhard_error_limit = 3\n")
	c := mustDial(t, r.addr(), "127.0.0.1")
	client := c.conn.LocalAddr().String()
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
	var heard []string
	for _, rcpt := range []string{"victim1@elsewhere.example", "victim2@elsewhere.example"} {
		rep := mustCmd(t, c, deniedReply(rcpt), "RCPT TO:<%s>", rcpt)
		heard = append(heard, rep.String())
	}
	// The third refusal and, pipelined behind it in the same packet, a
	// recipient the relay would accept.
	c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.conn.Write([]byte("RCPT TO:<victim3@elsewhere.example>\r\nRCPT TO:<user@relay.example>\r\n")); err != nil {
		t.Fatal(err)
	}
	var after []string
	for range 3 {
		rep, err := c.read()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.Errorf("after the third refusal: %v; want replies, then EOF", err)
			}
			break
		}
		after = append(after, rep.String())
	}
	heard = append(heard, after...)
	if len(after) != 2 || after[0] != deniedReply("victim3@elsewhere.example") || !strings.HasPrefix(after[1], "421 4.7.0 ") {
		t.Errorf("replies to the third refused RCPT and a pipelined RCPT behind it: %q; want [%q, \"421 4.7.0 ...\"], then the connection closed", after, deniedReply("victim3@elsewhere.example"))
	}
	for _, a := range after {
		if strings.HasPrefix(a, "250") {
			t.Errorf("a command pipelined after the hard error limit was run and answered %q; want the session over", a)
		}
	}
	var refusals, logged []string
	for _, h := range heard {
		if !strings.HasPrefix(h, "2") {
			refusals = append(refusals, h)
		}
	}
	waitFor(2*time.Second, func() bool {
		logged = logged[:0]
		for _, e := range clientRejects(r, client) {
			logged = append(logged, e.Get("reply"))
		}
		return len(logged) >= len(refusals)
	})
	if strings.Join(logged, "|") != strings.Join(refusals, "|") {
		t.Errorf("mail-log reject replies %q; want the refusals the client heard, %q", logged, refusals)
	}
}
