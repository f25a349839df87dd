package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// A black-box review of the SMTP edges, as a hostile client and a broken
// upstream see them; each case here failed before the fix named in its
// comment.

// proxyTransaction sends one message through addr and returns the replies
// to MAIL, RCPT and the final dot (nil where the transaction stopped).
func proxyTransaction(t *testing.T, addr, subject string) (mail, rcpt, final reply) {
	t.Helper()
	c := mustDial(t, addr, "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	var err error
	if mail, err = c.cmd("MAIL FROM:<alice@example.org>"); err != nil || mail.code() != 250 {
		return mail, nil, nil
	}
	if rcpt, err = c.cmd("RCPT TO:<bob@example.net>"); err != nil || rcpt.code() != 250 {
		return mail, rcpt, nil
	}
	mustCmd(t, c, "354", "DATA")
	if final, err = c.cmd("Subject: %s\r\n\r\nthe text\r\n.", subject); err != nil {
		t.Fatalf("final dot: %v", err)
	}
	return mail, rcpt, final
}

// TestRevSMTPDataNot354: an upstream that answers DATA with a 2xx instead
// of 354 never saw the message; one that answers the final dot with 354
// gave no verdict. Before, the relay took the 2xx to DATA for delivery: in
// store-and-forward mode the message was logged "sent" and removed from
// the spool, and in proxy mode the client heard the upstream's 250 for a
// message nobody had; the 354 to the final dot was passed to the client as
// the reply to its final dot.
func TestRevSMTPDataNot354(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		script harness.Script
	}{
		{"250 to DATA", harness.Script{Data: harness.Response{Reply: "250 2.0.0 Ok, nothing to see"}}},
		{"354 to the final dot", harness.Script{EndOfData: harness.Response{Reply: "354 go on"}}},
	} {
		t.Run(tc.name+"/proxy", func(t *testing.T) {
			t.Parallel()
			up := harness.NewFakeSMTP(t, tc.script)
			r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
			_, _, final := proxyTransaction(t, r.addr(), tc.name)
			if final.code()/100 != 4 || !strings.HasPrefix(final.String(), "451 4.") {
				t.Errorf("reply to the final dot = %q; want a 451, the message is not delivered", final)
			}
			e := r.waitEvent("proxy", 5*time.Second, nil)
			if e.Get("result") == string(maillog.Sent) {
				t.Errorf("mail log: %v; want the message not sent", e.Fields)
			}
		})
		t.Run(tc.name+"/store and forward", func(t *testing.T) {
			t.Parallel()
			up := harness.NewFakeSMTP(t, tc.script)
			spool := t.TempDir()
			r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--forward-to", up.Addr(), "--poll", "1", "--spool-dir", spool)
			id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message(tc.name)).Final)
			e := r.waitEvent("delivery", 15*time.Second, nil)
			if got := e.Get("result"); got != "deferred" {
				t.Errorf("delivery: %v; want result=deferred", e.Fields)
			}
			if files := spoolFiles(t, spool); len(files[id]) == 0 {
				t.Errorf("message %s is no longer in the spool (%v); the upstream never took it", id, files)
			}
		})
	}
}

// TestRevSMTPProxyEnhancedCodes: the relay offers ENHANCEDSTATUSCODES, so
// every reply line its client hears carries one (RFC 2034 section 3), also
// an upstream's reply passed on in proxy mode. Before, an upstream's reply
// without one went to the client as it came ("452 try later").
func TestRevSMTPProxyEnhancedCodes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		script harness.Script
		stage  string // "MAIL", "RCPT" or "."
		want   reply
	}{
		{"452 to MAIL", harness.Script{Mail: harness.Response{Reply: "452 try later"}}, "MAIL", reply{"452 4.0.0 try later"}},
		{"550 to RCPT", harness.Script{Rcpt: harness.Response{Reply: "550 no such user"}}, "RCPT", reply{"550 5.0.0 no such user"}},
		{"250 to the final dot", harness.Script{EndOfData: harness.Response{Reply: "250 queued"}}, ".", reply{"250 2.0.0 queued"}},
		{"multi-line, the code on the first line only", harness.Script{EndOfData: harness.Response{Reply: "554-5.7.1 rejected\r\n554 see the policy"}}, ".",
			reply{"554-5.7.1 rejected", "554 5.7.1 see the policy"}},
		{"a code of the wrong class", harness.Script{EndOfData: harness.Response{Reply: "451 5.7.1 odd"}}, ".", reply{"451 4.0.0 5.7.1 odd"}},
		{"with its own code", harness.Script{EndOfData: harness.Response{Reply: "250 2.0.0 Ok: queued as X"}}, ".", reply{"250 2.0.0 Ok: queued as X"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := harness.NewFakeSMTP(t, tc.script)
			r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--no-enforce", "--spool-dir", t.TempDir())
			mail, rcpt, final := proxyTransaction(t, r.addr(), tc.name)
			got := map[string]reply{"MAIL": mail, "RCPT": rcpt, ".": final}[tc.stage]
			if got.String() != tc.want.String() {
				t.Errorf("reply to %s = %q; want %q", tc.stage, got, tc.want)
			}
		})
	}
}

// TestRevSMTPAddressSyntax: a local part with an unquoted "@" is not an
// address (RFC 5321 section 4.1.2), and a malformed parameter value is
// refused with 501. Before, go-smtp's unquoting made
// a@b@example.org look like "a@b"@example.org, and it was accepted and
// passed on quoted, a guess at which domain the client meant.
func TestRevSMTPAddressSyntax(t *testing.T) {
	t.Parallel()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	const ehlo, mail = "EHLO client.e2e.test", "MAIL FROM:<alice@example.org>"
	runCommandCases(t, r.addr(), []commandCase{
		{name: "sender with two @", setup: []string{ehlo}, line: "MAIL FROM:<a@b@example.org>", want: "501 5.1.7 "},
		{name: "sender with two @, no brackets", setup: []string{ehlo}, line: "MAIL FROM:a@b@example.org", want: "501 5.1.7 "},
		{name: "recipient with two @", setup: []string{ehlo, mail}, line: "RCPT TO:<x@y@example.net>", want: "501 5.1.3 "},
		{name: "recipient with two @ and a route", setup: []string{ehlo, mail}, line: "RCPT TO:<@relay.example:x@y@example.net>", want: "501 5.1.3 "},
		{name: "quoted @", setup: []string{ehlo, mail}, line: `RCPT TO:<"x@y"@example.net>`, want: "250 "},
		{name: "quoted local part, then two @", setup: []string{ehlo, mail}, line: `RCPT TO:<"x"@y@example.net>`, want: "501 5.1.3 "},
		{name: "quoted local part with a quote and an @", setup: []string{ehlo, mail}, line: `RCPT TO:<"x\"@y"@example.net>`, want: "250 "},
		{name: "source route", setup: []string{ehlo, mail}, line: "RCPT TO:<@relay.example:bob@example.net>", want: "250 "},
		// RFC 5321 section 4.2.2: a bad parameter value is a syntax
		// error in the arguments, 501; go-smtp said 500.
		{name: "malformed AUTH parameter", setup: []string{ehlo}, line: "MAIL FROM:<alice@example.org> AUTH=", want: "501 5.5.4 "},
		{name: "AUTH parameter with a bad mailbox", setup: []string{ehlo}, line: "MAIL FROM:<alice@example.org> AUTH=a+0Ab", want: "501 5.5.4 "},
	})
}

// earlyUpstream is an SMTP server that, for a message to
// early@example.net, answers "250 2.0.0 early" right behind its 354, before
// the text, and "550 5.7.1 refused after all" after the final dot: two
// replies to one message, the first before the end of the text, which RFC
// 5321 forbids. Other messages get one 250 after the dot.
type earlyUpstream struct{ ln net.Listener }

func newEarlyUpstream(t *testing.T) *earlyUpstream {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &earlyUpstream{ln: ln}
	harness.Serve(t, ln, u.serve)
	return u
}

func (u *earlyUpstream) serve(c net.Conn) {
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	fmt.Fprint(c, "220 early.test ESMTP\r\n")
	early := false
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch verb := strings.ToUpper(strings.Fields(line + " x")[0]); verb {
		case "EHLO":
			fmt.Fprint(c, "250-early.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n")
		case "MAIL":
			early = false
			fmt.Fprint(c, "250 2.1.0 Ok\r\n")
		case "RCPT":
			early = early || strings.Contains(line, "<early@")
			fmt.Fprint(c, "250 2.1.5 Ok\r\n")
		case "DATA":
			// The early reply goes in the same write as the 354, so it
			// reaches the relay before the text's end whatever the
			// machine's load: a separate write could come only after
			// the relay's final dot, and then be read as its reply.
			if early {
				fmt.Fprint(c, "354 go ahead\r\n250 2.0.0 early\r\n")
			} else {
				fmt.Fprint(c, "354 go ahead\r\n")
			}
			var text []byte
			for !bytes.HasSuffix(text, []byte("\r\n.\r\n")) {
				b, err := r.ReadByte()
				if err != nil {
					return
				}
				text = append(text, b)
			}
			if early {
				fmt.Fprint(c, "550 5.7.1 refused after all\r\n")
			} else {
				fmt.Fprint(c, "250 2.0.0 queued\r\n")
			}
		case "QUIT":
			fmt.Fprint(c, "221 bye\r\n")
			return
		default:
			fmt.Fprint(c, "250 2.0.0 Ok\r\n")
		}
	}
}

// TestRevSMTPEarlyReply: an upstream that answered a message's text before
// its final dot ("250 early") and again after it ("550") gave no
// acceptance, and its session is out of step. Before, the relay took the
// early 250 as the reply to the message, and the next message on that
// upstream session read the 550 as the reply to its MAIL: in proxy mode the
// client heard 250 for a refused message, then 550 to its next MAIL.
func TestRevSMTPEarlyReply(t *testing.T) {
	t.Parallel()
	// send sends, in one session to addr, a message to early@example.net
	// and then one to normal@example.net, and returns the replies to their
	// final dots.
	send := func(t *testing.T, addr string) map[string]reply {
		c := mustDial(t, addr, "127.0.0.1")
		mustCmd(t, c, "250", "EHLO client.e2e.test")
		finals := map[string]reply{}
		for _, rcpt := range []string{"early", "normal"} {
			mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
			mustCmd(t, c, "250", "RCPT TO:<%s@example.net>", rcpt)
			mustCmd(t, c, "354", "DATA")
			rep, err := c.cmd("Subject: %s\r\n\r\n%s.", rcpt, strings.Repeat("a line of text\r\n", 1000))
			if err != nil {
				t.Fatal(err)
			}
			finals[rcpt] = rep
		}
		return finals
	}
	t.Run("proxy", func(t *testing.T) {
		t.Parallel()
		up := newEarlyUpstream(t)
		r := startRelay(t, "127.0.0.1", "--as-proxy", up.ln.Addr().String(), "--interface", "127.0.0.1", "--no-enforce", "--spool-dir", t.TempDir())
		for subject, rep := range send(t, r.addr()) {
			if want := map[string]int{"early": 4, "normal": 2}[subject]; rep.code()/100 != want {
				t.Errorf("message %q: final reply %q; want a %dxx", subject, rep, want)
			}
		}
	})
	t.Run("store and forward", func(t *testing.T) {
		t.Parallel()
		up := newEarlyUpstream(t)
		r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--forward-to", up.ln.Addr().String(),
			"--poll", "1", "--no-enforce", "--spool-dir", t.TempDir())
		for rcpt, rep := range send(t, r.addr()) {
			if !replyIs(rep, "250") {
				t.Fatalf("message %q: final reply %q; want 250", rcpt, rep)
			}
		}
		r.waitEvent("delivery", 20*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<normal@example.net>" })
		r.waitEvent("delivery", 20*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<early@example.net>" })
		if got := deliveries(r.events("delivery"), "early@example.net", "sent"); len(got) > 0 {
			t.Errorf("the message answered early was logged sent: %v", got[0].Fields)
		}
		if got := deliveries(r.events("delivery"), "normal@example.net", "sent"); len(got) != 1 {
			t.Errorf("the next message: %d deliveries sent; want 1 (mail log %v)", len(got), r.events("delivery"))
		}
	})
}

// TestRevSMTPUTF8HeloReceived: a client whose EHLO name has U-labels (which
// EHLO takes, RFC 6531) sends a message of ASCII only. Before, the relay's
// own Received header carried the name in UTF-8: with SMTPUTF8 declared,
// the message then needed SMTPUTF8 (RFC 6532) and bounced with 5.6.7
// toward an upstream without it; without, a header had 8-bit octets it may
// not have. The name now goes in its A-label form.
func TestRevSMTPUTF8HeloReceived(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Capabilities: []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES"}})
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--forward-to", up.Addr(), "--poll", "1",
		"--no-bounces", "--spool-dir", t.TempDir())
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO bücher.example")
	for _, param := range []string{" SMTPUTF8", ""} {
		mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>%s", param)
		mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
		mustCmd(t, c, "354", "DATA")
		mustCmd(t, c, "250", "Subject: ascii%s\r\n\r\nnothing but ASCII\r\n.", param)
	}
	txs := up.WaitTransactions(t, 2, 20*time.Second)
	for _, tx := range txs {
		if !tx.Accepted() {
			t.Errorf("upstream transaction not accepted: %+v", tx)
		}
		if !bytes.HasPrefix(tx.Data, []byte("Received: from xn--bcher-kva.example (")) {
			t.Errorf("upstream content starts %.80q; want the EHLO name as A-labels", tx.Data)
		}
	}
	for _, e := range r.unsent() {
		t.Errorf("delivery %v; want every message sent", e.Fields)
	}
}

// TestRevSMTPGoneMidChunk: a client that goes away in the middle of a BDAT
// chunk has sent no message; nothing of it is kept or relayed. Before, a
// BDAT LAST cut short by the client's disconnection was taken for a whole
// chunk (go-smtp reads a chunk through an io.LimitReader, which ends at
// io.EOF without an error): the truncated message was queued in
// store-and-forward mode, and relayed, with the upstream's 250, in proxy
// mode.
func TestRevSMTPGoneMidChunk(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	for _, mode := range []struct {
		name string
		args []string
	}{
		{"store and forward", []string{"--as-server"}},
		{"proxy", []string{"--as-proxy", up.Addr()}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			spool := t.TempDir()
			r := startRelay(t, "127.0.0.1", append(mode.args, "--interface", "127.0.0.1", "--spool-dir", spool)...)
			for _, chunks := range []string{
				"BDAT 100000 LAST\r\nSubject: cut\r\n\r\nonly the start",
				"BDAT 17\r\nSubject: cut\r\n\r\nBDAT 100000 LAST\r\nonly the start",
			} {
				c := mustDial(t, r.addr(), "127.0.0.1")
				mustCmd(t, c, "250", "EHLO client.e2e.test")
				mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
				mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
				c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.conn.Write([]byte(chunks)); err != nil {
					t.Fatal(err)
				}
				c.Close()
			}
			// Each connection's end is logged after its session is over.
			if !waitFor(10*time.Second, func() bool { return len(r.events("disconnect")) == 2 }) {
				t.Fatalf("%d disconnect lines; want 2", len(r.events("disconnect")))
			}
			for _, ev := range []string{"accept", "proxy"} {
				if es := r.events(ev); len(es) > 0 {
					t.Errorf("a message cut short was kept or relayed: %s %v", ev, es[0].Fields)
				}
			}
			checkSpoolEmpty(t, spool)
			for _, tx := range up.Transactions() {
				if tx.Accepted() {
					t.Errorf("the upstream accepted a message cut short: %d octets", len(tx.Data))
				}
			}
		})
	}
}
