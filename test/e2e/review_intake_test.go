package e2e

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// A hostile review of the SMTP intake, over raw TCP to the built binary:
// each case here failed before the fix named in its comment.

// TestReviewIntakeReplies: replies the command layer got wrong, each case
// pipelined in one write.
func TestReviewIntakeReplies(t *testing.T) {
	t.Parallel()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--size", "10000", "--spool-dir", t.TempDir())
	const ehlo, mail, rcpt = "EHLO client.e2e.test", "MAIL FROM:<alice@example.org>", "RCPT TO:<bob@example.net>"
	type pipelined struct {
		name  string
		setup []string // commands that each get a 2xx
		// line gets a reply starting with want; next, if set, one
		// starting with then.
		line, want, next, then string
	}
	for _, tc := range []pipelined{
		// RFC 5321 section 4.1.1.11: a parameter the server does not
		// implement is 555; go-smtp said 500 (command unrecognized).
		{name: "unknown MAIL parameter", setup: []string{ehlo}, line: mail + " FOO=BAR", want: "555 5.5.4 Unsupported option: FOO=BAR",
			next: rcpt, then: "503 5.5.1 "},
		{name: "unknown RCPT parameter", setup: []string{ehlo, mail}, line: rcpt + " FOO=1", want: "555 5.5.4 ",
			next: "DATA", then: "554 5.5.1 "},
		{name: "known parameters", setup: []string{ehlo}, line: mail + " BODY=8BITMIME SIZE=10 RET=HDRS ENVID=x AUTH=<>", want: "250 ",
			next: rcpt + " NOTIFY=NEVER ORCPT=rfc822;bob@example.net", then: "250 "},
		// RFC 1870: SIZE is up to 20 digits; one that does not fit in
		// 64 bits is still too big, not a syntax error (was 501).
		{name: "SIZE of 20 digits", setup: []string{ehlo}, line: mail + " SIZE=99999999999999999999", want: "552 5.3.4 "},
		{name: "SIZE at the limit", setup: []string{ehlo}, line: mail + " SIZE=10000", want: "250 "},
		{name: "SIZE over the limit", setup: []string{ehlo}, line: mail + " SIZE=10001", want: "552 5.3.4 "},
		// RFC 5321 section 4.5.1: postmaster without a domain MUST be
		// accepted (was 501).
		{name: "RCPT to Postmaster", setup: []string{ehlo, mail}, line: "RCPT TO:<Postmaster>", want: "250 ",
			next: "DATA", then: "354 "},
		{name: "MAIL parameter without a name", setup: []string{ehlo}, line: mail + " =x", want: "555 5.5.4 Unsupported option: =x"},
		{name: "RCPT to postmaster without brackets", setup: []string{ehlo, mail}, line: "RCPT TO:postmaster", want: "250 "},
		{name: "RCPT to postmaster with a parameter", setup: []string{ehlo, mail}, line: "RCPT TO:<postmaster> NOTIFY=NEVER", want: "250 "},
		// RFC 3030 section 3: DATA after BDAT is a bad sequence (was
		// 502); the BDAT transaction goes on.
		{name: "DATA after BDAT", setup: []string{ehlo, mail, rcpt, "BDAT 5\r\nabc"}, line: "DATA", want: "503 5.5.1 ",
			next: "BDAT 0 LAST", then: "250 "},
		// Postfix: 503 when AUTH is not offered; go-smtp said 502, or
		// 454 (try again) to a bad initial response.
		{name: "AUTH not offered", setup: []string{ehlo}, line: "AUTH PLAIN AGFsaWNlAHNlY3JldA==", want: "503 5.5.1 "},
		{name: "AUTH not offered, bad initial response", setup: []string{ehlo}, line: "AUTH PLAIN ***", want: "503 5.5.1 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// All in one write, as a pipelining client sends them
			// (RFC 2920): each gets its reply, in order.
			lines := append(append([]string{}, tc.setup...), tc.line)
			if tc.next != "" {
				lines = append(lines, tc.next)
			}
			c := mustDial(t, r.addr(), "127.0.0.1")
			c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := io.WriteString(c.conn, strings.Join(lines, "\r\n")+"\r\n"); err != nil {
				t.Fatal(err)
			}
			for i, l := range lines {
				want := "2"
				switch {
				case i == len(tc.setup):
					want = tc.want
				case i > len(tc.setup):
					want = tc.then
				}
				if rep, err := c.read(); err != nil || !strings.HasPrefix(rep.String(), want) {
					t.Errorf("%.50q = %q, %v; want %q", l, rep, err, want+"...")
				}
			}
		})
	}
}

// TestReviewMessageSize: a message of exactly --size octets is accepted,
// one octet more is refused after the final dot (552 5.3.4), by DATA and
// BDAT alike, in both modes, and the session goes on. go-smtp refused a
// message of exactly the limit, while EHLO and MAIL SIZE= allowed it.
func TestReviewMessageSize(t *testing.T) {
	t.Parallel()
	const limit = 10000
	up := harness.NewFakeSMTP(t, harness.Script{})
	server := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--size", "10000", "--spool-dir", t.TempDir())
	proxy := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--size", "10000", "--spool-dir", t.TempDir())
	// content returns n octets of message text, the final CRLF included.
	content := func(n int) string {
		h := "Subject: size\r\n\r\n"
		return h + strings.Repeat("a", n-len(h)-2) + "\r\n"
	}
	for _, mode := range []struct {
		name string
		r    *relay
	}{{"store and forward", server}, {"proxy", proxy}} {
		for _, tc := range []struct {
			name string
			size int
			bdat bool
			want string
		}{
			{"DATA at the limit", limit, false, "250 "},
			{"DATA one over", limit + 1, false, "552 5.3.4 "},
			{"BDAT at the limit", limit, true, "250 "},
			{"BDAT one over", limit + 1, true, "552 5.3.4 "},
		} {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				c := mustDial(t, mode.r.addr(), "127.0.0.1")
				if rep := mustCmd(t, c, "250", "EHLO client.e2e.test"); !strings.Contains(rep.String(), "250-SIZE 10000\\r\\n") {
					t.Errorf("EHLO = %q; want SIZE 10000", rep)
				}
				mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
				mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
				text := content(tc.size)
				var rep reply
				var err error
				if tc.bdat {
					// Two chunks: the limit is on their sum.
					half := len(text) / 2
					mustCmd(t, c, "250", "BDAT %d\r\n%s", half, text[:half-2]) // cmd adds the CRLF that ends the chunk
					rep, err = c.cmd("BDAT %d LAST\r\n%s", len(text)-half, text[half:len(text)-2])
				} else {
					mustCmd(t, c, "354", "DATA")
					rep, err = c.cmd("%s.", text)
				}
				if err != nil || !strings.HasPrefix(rep.String(), tc.want) {
					t.Errorf("a message of %d octets with --size %d: %q, %v; want %q", tc.size, limit, rep, err, tc.want+"...")
				}
				mustCmd(t, c, "250", "NOOP")
			})
		}
	}
}

// TestReviewSilentInMessageText: a client that stops sending in the middle
// of DATA or of a BDAT chunk hears exactly one reply, 421 4.4.2, and the
// connection closes. Before, it heard "554 5.0.0 Error: transaction
// failed: read tcp ...: i/o timeout", a permanent refusal carrying an
// internal error, then 421, after three timeouts instead of one.
func TestReviewSilentInMessageText(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	server := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--idle-timeout", "2", "--spool-dir", t.TempDir())
	proxy := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--idle-timeout", "2", "--spool-dir", t.TempDir())
	for _, mode := range []struct {
		name string
		r    *relay
	}{{"store and forward", server}, {"proxy", proxy}} {
		for _, tc := range []struct {
			name, start string
			want        string
		}{
			{"DATA", "DATA", "354"},
			{"BDAT", "", ""},
		} {
			t.Run(mode.name+"/"+tc.name, func(t *testing.T) {
				c := mustDial(t, mode.r.addr(), "127.0.0.1")
				mustCmd(t, c, "250", "EHLO client.e2e.test")
				mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
				mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
				if tc.start != "" {
					mustCmd(t, c, tc.want, "%s", tc.start)
					io.WriteString(c.conn, "Subject: cut\r\n\r\nhalf a li")
				} else {
					io.WriteString(c.conn, "BDAT 100\r\nSubject: cut\r\n\r\nhalf a li")
				}
				start := time.Now()
				rep, err := c.read()
				if err != nil || !strings.HasPrefix(rep.String(), "421 4.4.2 ") {
					t.Fatalf("silent in the message text: %q, %v; want 421 4.4.2", rep, err)
				}
				if d := time.Since(start); d > 10*time.Second {
					t.Errorf("421 after %v; want it after the 2 s idle timeout", d)
				}
				if rep, err := c.read(); !errors.Is(err, io.EOF) {
					t.Errorf("after the 421: %q, %v; want the connection closed", rep, err)
				}
			})
		}
	}
}

// TestReviewProxyUpstreamFaults: in proxy mode the client hears the
// upstream's trouble as a temporary reply, and a 421 passed on from the
// upstream ends the session, as RFC 5321 section 3.8 says a 421 does.
// Before, the session said 421 to MAIL and went on reading commands.
func TestReviewProxyUpstreamFaults(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		script harness.Script
		// stage is the command whose reply is want: "MAIL", "RCPT" or
		// "." (the final dot).
		stage, want string
		closes      bool // the connection closes after want
	}{
		{"421 at the greeting", harness.Script{Greeting: harness.Response{Reply: "421 4.3.2 fake.relaykeeper.test busy"}}, "MAIL", "421 4.3.2 ", true},
		{"421 to RCPT", harness.Script{Rcpt: harness.Response{Reply: "421 4.7.0 fake.relaykeeper.test try later"}}, "RCPT", "421 4.7.0 ", true},
		{"421 to the final dot", harness.Script{EndOfData: harness.Response{Reply: "421 4.3.0 fake.relaykeeper.test shutting down"}}, ".", "421 4.3.0 ", true},
		{"reset in the content", harness.Script{Content: harness.Response{Fault: harness.Reset, After: 10}}, ".", "451 4.4.1 ", false},
		{"451 to the final dot", harness.Script{EndOfData: harness.Response{Reply: "451 4.3.0 try later"}}, ".", "451 4.3.0 ", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := harness.NewFakeSMTP(t, tc.script)
			r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
			c := mustDial(t, r.addr(), "127.0.0.1")
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			var rep reply
			var err error
			for _, step := range []struct{ stage, line, ok string }{
				{"MAIL", "MAIL FROM:<alice@example.org>", "250"},
				{"RCPT", "RCPT TO:<bob@example.net>", "250"},
				{"DATA", "DATA", "354"},
				{".", "Subject: upstream faults\r\n\r\nsome text for the upstream\r\n.", ""},
			} {
				if rep, err = c.cmd("%s", step.line); step.stage == tc.stage {
					break
				}
				if err != nil || !replyIs(rep, step.ok) {
					t.Fatalf("%s = %q, %v; want %s", step.stage, rep, err, step.ok)
				}
			}
			if err != nil || !strings.HasPrefix(rep.String(), tc.want) {
				t.Fatalf("reply to %s = %q, %v; want %q", tc.stage, rep, err, tc.want+"...")
			}
			if tc.closes {
				if next, err := c.read(); !errors.Is(err, io.EOF) {
					t.Errorf("after %q: %q, %v; want the connection closed", rep, next, err)
				}
				return
			}
			if next, err := c.cmd("NOOP"); err != nil || next.code() != 250 {
				t.Errorf("after %q: NOOP = %q, %v; want 250, the session usable", rep, next, err)
			}
		})
	}
}

// TestReviewAuthReplies: over TLS, a SASL response or initial response
// that is not base64 is a syntax error (501), not go-smtp's 454 "try
// again later"; STARTTLS under TLS is Postfix's 554 5.5.1, not 502 (not
// implemented); VRFY without an address is 501, not 252.
func TestReviewAuthReplies(t *testing.T) {
	t.Parallel()
	r := startAuthRelay(t, plainSecrets, "")
	for _, tc := range []struct {
		name  string
		lines []string // each but the last gets a 2xx or 3xx
		want  string   // prefix of the reply to the last line
	}{
		{"initial response not base64", []string{"AUTH PLAIN ***"}, "501 5.5.2 "},
		{"SASL response not base64", []string{"AUTH PLAIN", "***"}, "501 "},
		{"SASL LOGIN password not base64", []string{"AUTH LOGIN", "YWxpY2U=", "not base64!"}, "501 "},
		{"cancelled", []string{"AUTH PLAIN", "*"}, "501 "},
		{"wrong password", []string{"AUTH PLAIN " + authPlain("alice", "wrong")}, "535 5.7.8 "},
		{"STARTTLS under TLS", []string{"STARTTLS"}, "554 5.5.1 "},
		{"VRFY without an address", []string{"VRFY"}, "501 5.5.4 "},
		{"VRFY", []string{"VRFY <alice@relay.example>"}, "252 "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mustDial(t, r.addr(), "127.0.0.1")
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			if err := c.startTLS(); err != nil {
				t.Fatal(err)
			}
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			for i, l := range tc.lines {
				rep, err := c.cmd("%s", l)
				if i < len(tc.lines)-1 {
					if err != nil || rep.code()/100 > 3 {
						t.Fatalf("%q = %q, %v; want 2xx or 3xx", l, rep, err)
					}
					continue
				}
				if err != nil || !strings.HasPrefix(rep.String(), tc.want) {
					t.Errorf("%q = %q, %v; want %q", l, rep, err, tc.want+"...")
				}
			}
			// The session goes on.
			mustCmd(t, c, "250", "NOOP")
		})
	}
}

// TestReviewSmuggling: SMTP smuggling (the end-of-data look-alikes that
// other servers honour) in both modes: each message is one transaction
// upstream, the smuggled MAIL never runs, and what arrives has CRLF line
// endings only. It passed at review; it pins the behaviour.
func TestReviewSmuggling(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	server := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--forward-to", up.Addr(), "--poll", "1", "--spool-dir", t.TempDir())
	proxy := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	const smuggled = "MAIL FROM:<evil@example.org>\r\nRCPT TO:<victim@example.net>\r\nDATA\r\nSubject: smuggled\r\n\r\nevil\r\n"
	seps := []struct{ name, sep string }{
		{"LF.LF", "\n.\n"}, {"CR.CR", "\r.\r"}, {"LF.CRLF", "\n.\r\n"}, {"CRLF.LF", "\r\n.\n"},
		{"CR.LF", "\r.\n"}, {"CRLF.CR", "\r\n.\r"}, {"CRLF.NUL", "\r\n.\x00\r\n"}, {"CRLF.CRCRLF", "\r\n.\r\r\n"},
	}
	sent := 0
	for _, mode := range []struct {
		name string
		r    *relay
	}{{"store and forward", server}, {"proxy", proxy}} {
		for _, sp := range seps {
			t.Run(mode.name+"/"+sp.name, func(t *testing.T) {
				c := mustDial(t, mode.r.addr(), "127.0.0.1")
				mustCmd(t, c, "250", "EHLO client.e2e.test")
				mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
				mustCmd(t, c, "250", "RCPT TO:<bob@example.net>")
				mustCmd(t, c, "354", "DATA")
				body := "Subject: " + sp.name + "\r\nX-Bare: a\rb\nc\r\n\r\nfirst" + sp.sep + smuggled + "."
				if rep, err := c.cmd("%s", body); err != nil || rep.code() != 250 {
					t.Fatalf("final dot = %q, %v; want 250", rep, err)
				}
				sent++
				mustCmd(t, c, "250", "NOOP")
			})
		}
	}
	up.WaitTransactions(t, sent, 30*time.Second)
	time.Sleep(2 * time.Second) // a smuggled transaction would come right behind
	txs := up.Transactions()
	if len(txs) != sent {
		t.Errorf("upstream saw %d transactions; want %d, one per message", len(txs), sent)
	}
	for _, tx := range txs {
		if tx.MailFrom != "alice@example.org" {
			t.Errorf("upstream transaction from <%s>: a smuggled message", tx.MailFrom)
		}
		d := strings.ReplaceAll(string(tx.Data), "\r\n", "")
		if strings.ContainsAny(d, "\r\n") {
			t.Errorf("upstream content has a bare CR or LF: %.200q", tx.Data)
		}
		if !strings.Contains(string(tx.Data), "\r\nevil\r\n") {
			t.Errorf("upstream content lost the text after the look-alike: %.200q", tx.Data)
		}
	}
}

// TestReviewBdatAfterAbortedBdat: a BDAT transaction cut short by RSET or
// EHLO, then a new one, pipelined. Before, the new one's BDAT LAST heard
// the aborted one's "554 5.0.0 Error: transaction failed: smtp: message
// transmission aborted" (go-smtp's result channel race) most of the time,
// and the new message was queued all the same, with a null sender and no
// recipients.
func TestReviewBdatAfterAbortedBdat(t *testing.T) {
	t.Parallel()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	const tries = 10
	for _, abort := range []string{"RSET", "EHLO again.e2e.test"} {
		t.Run(abort, func(t *testing.T) {
			for i := range tries {
				c := mustDial(t, r.addr(), "127.0.0.1")
				mustCmd(t, c, "250", "EHLO client.e2e.test")
				c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
				io.WriteString(c.conn, "MAIL FROM:<alice@example.org>\r\nRCPT TO:<bob@example.net>\r\nBDAT 5\r\nabc\r\n"+
					abort+"\r\nMAIL FROM:<carol@example.org>\r\nRCPT TO:<dave@example.net>\r\nBDAT 15 LAST\r\nSubject: new\r\n\r\n")
				var last reply
				for range 7 {
					rep, err := c.read()
					if err != nil {
						t.Fatalf("try %d: %v", i, err)
					}
					last = rep
				}
				if last.code() != 250 {
					t.Errorf("try %d, BDAT LAST after %s = %q; want 250", i, abort, last)
				}
				c.Close()
			}
		})
	}
	// Every message queued has its envelope.
	deadline := time.Now().Add(5 * time.Second)
	for len(r.events("accept")) < 2*tries && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	for _, e := range r.events("accept") {
		if e.Get("from") != "<carol@example.org>" || e.Get("nrcpt") != "1" {
			t.Errorf("accepted from=%s nrcpt=%s; want <carol@example.org>, 1", e.Get("from"), e.Get("nrcpt"))
		}
	}
}

// TestReviewProxyFullDisk: proxy mode writes each message to a scratch
// file in the spool before it goes upstream; on a full disk the client
// hears 452 4.3.1 after its dot, nothing goes upstream, the session goes
// on, and the mail log's reject line has the reply the client heard
// (before, a different text: "452 4.3.1 insufficient system storage").
func TestReviewProxyFullDisk(t *testing.T) {
	t.Parallel()
	img, mnt := loopDisk(t)
	up := harness.NewFakeSMTP(t, harness.Script{})
	r := startRelayOnLoop(t, img, mnt, "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--size", "0", "--spool-dir", filepath.Join(mnt, "spool"))
	filler := fmt.Sprintf("/proc/%d/root", r.current().PID()) + filepath.Join(mnt, "filler")
	fill(t, filler)

	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	tx, err := c.send("alice@example.org", []string{"bob@example.net"}, fullDiskMessage(2<<20))
	if !errors.Is(err, errRefused) || !strings.HasPrefix(tx.Final.String(), "452 4.3.1 ") {
		t.Fatalf("a message through the proxy on a full disk: %+v, %v; want 452 4.3.1 after the dot", tx, err)
	}
	mustCmd(t, c, "250", "NOOP")
	for _, utx := range up.Transactions() {
		// MAIL and RCPT went upstream as they came; the message not.
		if len(utx.Data) > 0 || utx.Accepted() {
			t.Errorf("the upstream got %d octets, reply %q; want no message", len(utx.Data), utx.Reply)
		}
	}
	heard := tx.Final.String()
	logged := ""
	if e := r.waitEvent("reject", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("stage") == "data" }); e != nil {
		logged = e.Get("reply")
	}
	if logged != heard {
		t.Errorf("mail log reject reply=%q; want the reply the client heard, %q", logged, heard)
	}

	// Space again: the next message goes through, in the same session.
	os.Remove(filler)
	if _, err := c.send("alice@example.org", []string{"bob@example.net"}, fullDiskMessage(2<<20)); err != nil {
		t.Errorf("after space was freed: %v; want 250", err)
	}
}
