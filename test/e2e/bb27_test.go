package e2e

import (
	"fmt"
	"io"
	"net"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// Session 27's black-box checks from outside, over real sockets: the
// corners earlier suites (bb10 to bb26) did not reach. Each held when it
// was written; the tests keep it so.

// bb27Message sends one message (MAIL, RCPT, DATA, text, dot) on c and
// returns the reply to the final dot.
func bb27Message(t *testing.T, c *smtpClient, subject string) reply {
	t.Helper()
	mustCmd(t, c, "250", "MAIL FROM:<a@example.org>")
	mustCmd(t, c, "250", "RCPT TO:<b@example.net>")
	mustCmd(t, c, "354", "DATA")
	rep, err := c.cmd("Subject: %s\r\n\r\nbody\r\n.", subject)
	if err != nil {
		t.Fatalf("%s: final dot: %v", subject, err)
	}
	return rep
}

// TestBb27MalformedUpstreamReplies: an upstream whose reply is not a
// well-formed SMTP reply (a multi-line reply whose lines disagree on the
// code, either way round; text without a code; a code of two or four
// digits; a code after a blank; a reply to DATA before the text) never
// counts as delivered nor as refused. Stored, the message is deferred and
// stays queued; proxied, the client hears a 4xx at its final dot.
func TestBb27MalformedUpstreamReplies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		script harness.Script
	}{
		{"250 then 550", harness.Script{EndOfData: harness.Response{Reply: "250-2.0.0 first\r\n550 5.7.1 rejected"}}},
		{"550 then 250", harness.Script{EndOfData: harness.Response{Reply: "550-5.7.1 rejected\r\n250 2.0.0 ok"}}},
		{"no code", harness.Script{EndOfData: harness.Response{Reply: "hello there"}}},
		{"two digits", harness.Script{EndOfData: harness.Response{Reply: "25"}}},
		{"four digits", harness.Script{EndOfData: harness.Response{Reply: "2500 ok"}}},
		{"leading blank", harness.Script{EndOfData: harness.Response{Reply: " 250 ok"}}},
		{"reply before the text", harness.Script{Data: harness.Response{Reply: "354 go\r\n250 ok already"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			up := harness.NewFakeSMTP(t, tc.script)
			store := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
				"--forward-to", up.Addr(), "--forward-on-disconnect", "--poll", "1")
			c := mustDial(t, store.addr(), "127.0.0.1")
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			if rep := bb27Message(t, c, "stored"); rep.code() != 250 {
				t.Fatalf("stored: final dot = %q; want 250", rep)
			}
			mustCmd(t, c, "221", "QUIT")
			store.waitEvent("delivery", 20*time.Second, nil)
			time.Sleep(500 * time.Millisecond)
			for _, e := range store.events("delivery") {
				if e.Get("result") != "deferred" {
					t.Errorf("stored: delivery %s %q after reply %q; want deferred", e.Get("result"), e.Get("reply"), tc.name)
				}
			}

			proxy := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
			c = mustDial(t, proxy.addr(), "127.0.0.1")
			mustCmd(t, c, "250", "EHLO client.e2e.test")
			if rep := bb27Message(t, c, "proxied"); rep.code()/100 != 4 {
				t.Errorf("proxied: final dot = %q; want a 4xx", rep)
			}
			// The session goes on.
			mustCmd(t, c, "250", "NOOP")
		})
	}
}

// TestBb27UpstreamRecipientLimit: a client gives 1,001 recipients; the
// 1,001st hears 452 4.5.3 (LIMITS RCPTMAX=1000, RFC 9422), the other
// 1,000 are accepted. The upstream takes at most 50 recipients a
// transaction and answers the rest 452, as Postfix's
// smtpd_recipient_limit does: every one of the 1,000 must reach it, in
// further transactions, none deferred or bounced.
func TestBb27UpstreamRecipientLimit(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Decide: func(stage harness.Stage, tx harness.Transaction, _ string) harness.Response {
		if stage == harness.StageRcpt && len(tx.To()) >= 50 {
			return harness.Response{Reply: "452 4.5.3 Error: too many recipients"}
		}
		return harness.Response{}
	}})
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--forward-to", up.Addr(), "--forward-on-disconnect", "--poll", "1")
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	var b strings.Builder
	b.WriteString("MAIL FROM:<a@example.org>\r\n")
	for i := range 1001 {
		fmt.Fprintf(&b, "RCPT TO:<u%d@example.net>\r\n", i)
	}
	c.conn.SetWriteDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c.conn, b.String()); err != nil {
		t.Fatal(err)
	}
	for i := range 1002 {
		rep, err := c.read()
		if err != nil {
			t.Fatalf("reply %d: %v", i+1, err)
		}
		want := 250
		if i == 1001 {
			want = 452
			if !strings.HasPrefix(rep.String(), "452 4.5.3 ") {
				t.Errorf("RCPT 1001 = %q; want 452 4.5.3", rep)
			}
		}
		if rep.code() != want {
			t.Fatalf("reply %d = %q; want %d", i+1, rep, want)
		}
	}
	mustCmd(t, c, "354", "DATA")
	if rep, err := c.cmd("Subject: many\r\n\r\nbody\r\n."); err != nil || rep.code() != 250 {
		t.Fatalf("final dot: %q, %v", rep, err)
	}
	mustCmd(t, c, "221", "QUIT")
	got := map[string]int{}
	if !waitFor(60*time.Second, func() bool {
		clear(got)
		for _, tx := range up.Transactions() {
			if tx.Accepted() {
				for _, to := range tx.To() {
					got[to]++
				}
			}
		}
		return len(got) == 1000
	}) {
		t.Fatalf("upstream has %d of the 1000 recipients", len(got))
	}
	for to, n := range got {
		if n != 1 {
			t.Errorf("upstream got <%s> %d times", to, n)
		}
	}
	if bad := r.unsent(); len(bad) > 0 {
		t.Errorf("%d deliveries not sent, first: %v", len(bad), bad[0].Fields)
	}
}

// TestBb27OutOfFileDescriptors: the relay runs with 40 file descriptors
// (prlimit, as ulimit -n would). Idle connections use them all up; a
// message on a connection opened before then is refused with a 4xx (never
// 250, never 5xx), and once the idle ones go, the same session's next
// message is taken and a new connection is greeted: the accept loop
// survived EMFILE.
func TestBb27OutOfFileDescriptors(t *testing.T) {
	t.Parallel()
	prlimit := harness.Need(t, "prlimit")
	spool := t.TempDir()
	r := startRelayWith(t, "127.0.0.1", prlimit, "--nofile=40:40", harness.Binary(t),
		"--as-server", "--interface", "127.0.0.1", "--spool-dir", spool)
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	var idle []net.Conn
	defer func() {
		for _, nc := range idle {
			nc.Close()
		}
	}()
	for range 60 {
		nc, err := dialPlain(r.addr(), "127.0.0.1")
		if err != nil {
			break
		}
		idle = append(idle, nc)
	}
	time.Sleep(time.Second)
	rep := bb27Message(t, c, "no descriptors")
	if rep.code()/100 != 4 {
		t.Errorf("message while out of descriptors: %q; want a 4xx", rep)
	}
	for _, nc := range idle {
		nc.Close()
	}
	idle = nil
	time.Sleep(2 * time.Second)
	if rep := bb27Message(t, c, "descriptors back"); rep.code() != 250 {
		t.Errorf("message once descriptors are back: %q; want 250", rep)
	}
	c2 := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c2, "250", "EHLO client.e2e.test")
	if !r.current().Running() {
		t.Errorf("the relay exited; stderr:\n%s", r.stderr())
	}
}

// TestBb27ProxyClientVanishes: in proxy mode, a client that goes away in
// the middle of the message text or of a BDAT chunk, or right after a
// final dot's first octets, or with a TCP reset, never makes the upstream
// take a message: the text is only sent on once whole. The next client's
// message goes through.
func TestBb27ProxyClientVanishes(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	r := startRelay(t, "127.0.0.1", "--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	const env = "EHLO client.e2e.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"
	cuts := []struct {
		name, text string
		reset      bool
	}{
		{"in the text", env + "DATA\r\nSubject: partial\r\n\r\nline\r\n", false},
		{"in the text, reset", env + "DATA\r\nSubject: partial\r\n\r\nline\r\n", true},
		{"after a dot", env + "DATA\r\nSubject: partial\r\n\r\nline\r\n.", false},
		{"after dot CR", env + "DATA\r\nSubject: partial\r\n\r\nline\r\n.\r", false},
		{"in a chunk", env + "BDAT 60\r\nSubject: partial\r\n\r\nline\r\n", false},
		{"in the last chunk", env + "BDAT 100 LAST\r\nSubject: partial\r\n\r\nline\r\n", false},
		{"between chunks", env + "BDAT 27\r\nSubject: partial\r\n\r\nline\r\nBDAT 0", false},
	}
	for _, cut := range cuts {
		nc, err := dialPlain(r.addr(), "127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(nc, cut.text)
		time.Sleep(300 * time.Millisecond)
		if cut.reset {
			nc.(*net.TCPConn).SetLinger(0)
		}
		nc.Close()
	}
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	if rep := bb27Message(t, c, "whole"); rep.code() != 250 {
		t.Fatalf("the whole message: %q; want 250", rep)
	}
	up.WaitTransactions(t, 1, 10*time.Second)
	time.Sleep(500 * time.Millisecond)
	for _, tx := range up.Transactions() {
		if tx.Accepted() && strings.Contains(string(tx.Data), "partial") {
			t.Errorf("the upstream took a cut message: %q", tx.Data)
		}
	}
	n := 0
	for _, tx := range up.Transactions() {
		if tx.Accepted() {
			n++
		}
	}
	if n != 1 {
		t.Errorf("upstream accepted %d messages; want 1", n)
	}
}

// TestBb27QuotedLocalPartsUpstream: quoted local parts reach the upstream
// quoted where they must be and unquoted where they need not be, in both
// modes: a blank, an escaped quote, an @, two dots, a backslash, a comma,
// parentheses, a leading dot; "plain" and "\a" lose their quotes.
func TestBb27QuotedLocalPartsUpstream(t *testing.T) {
	t.Parallel()
	cases := []struct{ given, want string }{
		{`"a b"@example.net`, `"a b"@example.net`},
		{`"a\"b"@example.net`, `"a\"b"@example.net`},
		{`"a@b"@example.net`, `"a@b"@example.net`},
		{`"john..doe"@example.net`, `"john..doe"@example.net`},
		{`"x\\y"@example.net`, `"x\\y"@example.net`},
		{`"plain"@example.net`, `plain@example.net`},
		{`"a,b"@example.net`, `"a,b"@example.net`},
		{`"a(b)"@example.net`, `"a(b)"@example.net`},
		{`"\a"@example.net`, `a@example.net`},
		{`".x"@example.net`, `".x"@example.net`},
	}
	for _, proxy := range []bool{false, true} {
		up := harness.NewFakeSMTP(t, harness.Script{})
		args := []string{"--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
			"--forward-to", up.Addr(), "--forward-on-disconnect", "--poll", "1"}
		if proxy {
			args = []string{"--as-proxy", up.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir()}
		}
		r := startRelay(t, "127.0.0.1", args...)
		c := mustDial(t, r.addr(), "127.0.0.1")
		mustCmd(t, c, "250", "EHLO client.e2e.test")
		mustCmd(t, c, "250", `MAIL FROM:<"s p"@example.org>`)
		for _, tc := range cases {
			mustCmd(t, c, "250", "RCPT TO:<%s>", tc.given)
		}
		mustCmd(t, c, "354", "DATA")
		mustCmd(t, c, "250", "Subject: quoted\r\n\r\nbody\r\n.")
		mustCmd(t, c, "221", "QUIT")
		tx := up.WaitTransactions(t, 1, 20*time.Second)[0]
		if tx.MailFrom != `"s p"@example.org` {
			t.Errorf("proxy=%v: MAIL FROM <%s>; want <\"s p\"@example.org>", proxy, tx.MailFrom)
		}
		got := map[string]bool{}
		for _, to := range tx.To() {
			got[to] = true
		}
		for _, tc := range cases {
			if !got[tc.want] {
				t.Errorf("proxy=%v: RCPT TO:<%s> did not reach the upstream as <%s>; it got %q", proxy, tc.given, tc.want, tx.To())
			}
		}
	}
}

// TestBb27BdatInterleavingParity: commands between BDAT chunks and in the
// middle of a transaction get Postfix's reply codes: NOOP and VRFY go on,
// EHLO ends the transaction, a second MAIL is nested, RCPT after BDAT is
// refused, a second BDAT LAST needs a new transaction, and EHLO or HELO
// after RCPT forgets it. Reply codes only: the enhanced codes of VRFY's 252
// differ on purpose, and parityRun takes Postfix's HELO name for one.
func TestBb27BdatInterleavingParity(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	pf := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(up.Addr()),
		MainCF: []string{"relay_domains = example.net"}})
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	const m, rc = "MAIL FROM:<a@example.org>\r\n", "RCPT TO:<b@example.net>\r\n"
	cases := []struct {
		name  string
		steps []string
	}{
		{"NOOP between chunks", []string{m, rc, "BDAT 5\r\nhello", "NOOP\r\n", "BDAT 3 LAST\r\nabc", "NOOP\r\n"}},
		{"EHLO between chunks", []string{m, rc, "BDAT 5\r\nhello", "EHLO again.e2e.test\r\n", "BDAT 3 LAST\r\nabc", "NOOP\r\n"}},
		{"MAIL between chunks", []string{m, rc, "BDAT 5\r\nhello", m, "RCPT TO:<c@example.net>\r\n", "BDAT 3 LAST\r\nabc"}},
		{"VRFY between chunks", []string{m, rc, "BDAT 5\r\nhello", "VRFY x\r\n", "BDAT 3 LAST\r\nabc"}},
		{"BDAT LAST twice", []string{m, rc, "BDAT 5 LAST\r\nhello", "BDAT 3 LAST\r\nabc", "NOOP\r\n"}},
		{"EHLO in a transaction", []string{m, rc, "EHLO again.e2e.test\r\n", "RCPT TO:<c@example.net>\r\n", "DATA\r\n"}},
		{"HELO in a transaction", []string{m, rc, "HELO again.e2e.test\r\n", "RCPT TO:<c@example.net>\r\n", "DATA\r\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want := parityRun(t, pf.Addr(), tc.steps)
			got := parityRun(t, r.addr(), tc.steps)
			for i := range tc.steps {
				if got[i][:3] != want[i][:3] {
					t.Errorf("step %d %.60q: relaykeeper %q, Postfix %q", i+1, tc.steps[i], got[i], want[i])
				}
			}
		})
	}
}

// TestBb27KillDuringBDAT: SIGKILL, three times, while six pipelining
// clients send by BDAT, in one chunk or in two, small messages and 200 KB
// ones, several a connection. Every message that heard 250 reaches the
// upstream once the relay is back (duplicates allowed, losses not): the
// kill tests before this one sent by DATA only.
func TestBb27KillDuringBDAT(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{})
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--forward-to", up.Addr(), "--poll", "1")
	var mu sync.Mutex
	acked := map[string]bool{}
	var next atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	filler := strings.Repeat(strings.Repeat("z", 998)+"\r\n", 200)
	send := func(c *smtpClient) error {
		n := next.Add(1)
		tag := fmt.Sprintf("bb27-bdat-%06d", n)
		body := "Subject: " + tag + "\r\n\r\nbody\r\n"
		if n%3 == 0 {
			body += filler
		}
		var b strings.Builder
		b.WriteString("MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n")
		replies := 3
		if half := len(body) / 2; n%2 == 0 {
			fmt.Fprintf(&b, "BDAT %d\r\n%sBDAT %d LAST\r\n%s", half, body[:half], len(body)-half, body[half:])
			replies = 4
		} else {
			fmt.Fprintf(&b, "BDAT %d LAST\r\n%s", len(body), body)
		}
		c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.WriteString(c.conn, b.String()); err != nil {
			return err
		}
		var rep reply
		for range replies {
			var err error
			if rep, err = c.read(); err != nil {
				return err
			}
		}
		if rep.code() == 250 {
			mu.Lock()
			acked[tag] = true
			mu.Unlock()
		}
		return nil
	}
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, _, err := dialFrom(r.addr(), "127.0.0.1")
				if err != nil {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				if rep, err := c.cmd("EHLO client.e2e.test"); err == nil && rep.code() == 250 {
					for range 5 {
						if send(c) != nil {
							break
						}
					}
				}
				c.Close()
			}
		}()
	}
	killLoop(3, 400*time.Millisecond, 800*time.Millisecond, killRestart(t, r))
	time.Sleep(500 * time.Millisecond)
	stopLoad(t, stop, &wg, 60*time.Second, "BDAT senders")
	mu.Lock()
	defer mu.Unlock()
	if len(acked) < 20 {
		t.Fatalf("only %d messages acknowledged; the load did not run", len(acked))
	}
	var missing []string
	if !waitFor(90*time.Second, func() bool {
		got := map[string]bool{}
		for _, tx := range up.Transactions() {
			if m := bb27TagRE.FindSubmatch(tx.Data); m != nil && tx.Accepted() {
				got[string(m[1])] = true
			}
		}
		missing = missing[:0]
		for tag := range acked {
			if !got[tag] {
				missing = append(missing, tag)
			}
		}
		return len(missing) == 0
	}) {
		sort.Strings(missing)
		t.Errorf("%d of %d acknowledged messages never reached the upstream, first: %q", len(missing), len(acked), missing[:min(5, len(missing))])
	}
	t.Logf("%d messages acknowledged, all delivered", len(acked))
}

var bb27TagRE = regexp.MustCompile(`(?m)^Subject: (bb27-bdat-\d+)\r?$`)
