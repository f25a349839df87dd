package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// The companion mode end to end: a real, private Postfix relays to a fake
// Gmail (FakeSMTP answering Gmail's real multi-line refusals, per
// recipient) through an amavis-style content filter, and "relaykeeper
// postfix-enforcer" acts on Postfix's own mail log.
//
// The pieces:
//
//   - Postfix: relay_domains = gmail.test, relayhost = the fake Gmail;
//     clients come in with XCLIENT, so that Postfix itself logs each one's
//     address (203.0.113.x) as amavis and the enforcer must find it.
//   - The content filter: content_filter = smtp-amavis:[127.0.0.1]:PORT,
//     served by fakeAmavis below, which re-injects every message into a
//     second Postfix smtpd (the "10025" service, content_filter= and
//     no_address_mappings) and then, as amavis does, appends its "Passed
//     CLEAN ..., [client ip] ..., Queue-ID: A, ..., queued_as: B" line to
//     the mail log and answers "250 ... queued as B". It learns the client
//     and queue id A from the Received field Postfix added, as amavis's
//     %e does; it gets no XFORWARD, so the re-injected message's own client
//     is 127.0.0.1 and only the amavis line says where it came from.
//   - The backup: always_bcc = backup@backup.test, sent by transport_maps to
//     a second FakeSMTP (the "backup server"); the test appends what it
//     receives to an mbox file, as local(8) would, for -f.
func TestCompanionEnforcer(t *testing.T) {
	t.Parallel()
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", Decide: compGmailDecide})
	dir := t.TempDir()
	backup, mbox, bcc := startCompanionBackup(t, dir)
	reinject := net.JoinHostPort("127.0.0.1", fmt.Sprint(harness.FreePort(t)))
	amavis := startFakeAmavis(t, reinject)
	pf := startAmavisPostfix(t, gmail, amavis, bcc...)

	banLog := filepath.Join(dir, "bans.log")
	access := filepath.Join(dir, "sender_access")
	welcome := filepath.Join(dir, "welcomelist")
	if err := os.WriteFile(welcome, []byte("127.0.0.0/8\n198.51.100.9   # a partner's server\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(enforcerArgs(pf.MailLogFile(), filepath.Join(dir, "state"), access, welcome, banLog, pf.Addr()),
		"-f", mbox, "--trusted-upstream", "127.0.0.1")

	// Five clients, five refusals.
	for _, m := range companionMessages[:5] {
		compSend(t, pf.Addr(), m)
	}
	for _, m := range companionMessages[:5] {
		compWaitLog(t, pf, `to=<`+regexp.QuoteMeta(m.to)+`>, relay=127\.0\.0\.1\[127\.0\.0\.1\]:\d+, .*status=(bounced|deferred) \(host .* said: `, 30*time.Second)
		compWaitLog(t, pf, `amavis\[\d+\]: .*\[`+regexp.QuoteMeta(m.ip)+`\].* -> .*<`+regexp.QuoteMeta(m.to)+`>`, 10*time.Second)
	}
	compWaitRetries(t, pf, `to=<rate@gmail\.test>, .*status=deferred`, 2, 30*time.Second)
	compWait(t, 10*time.Second, "the backup mbox holds the five messages", func() bool {
		b, _ := os.ReadFile(mbox)
		return bytes.Count(b, []byte("\nFrom ")) >= 4 && bytes.Count(b, []byte("@companion.test>")) >= 5
	})

	// 1. --once: the log as it is.
	out := enforcerOnce(t, nil, args...)
	compWantLines(t, out, []string{
		`^\S+ ban client=203\.0\.113\.7 prefix=\S+ queue=\w+ client_name=mx\.spam\.test .*rule=gmail-unsolicited`,
		`^\S+ block-domain domain=example\.com .*client=203\.0\.113\.8 .*rule=gmail-domain-reputation`,
		`^\S+ encapsulate queue=\w+ client=203\.0\.113\.9 .*to=<dmarc@gmail\.test> .*rule=gmail-dmarc`,
		`^\S+ encapsulate queue=\w+ client=198\.51\.100\.9 .*to=<partner@gmail\.test> .*rule=gmail-unsolicited why="the client is on the welcomelist"`,
		`^\S+ ban client=203\.0\.113\.11 .*status=deferred .*rule=gmail-ip-reputation`,
	})
	if n := strings.Count(out, "ban client=203.0.113.11"); n != 1 {
		t.Errorf("%d ban lines for the deferred client's retries; want 1", n)
	}
	compWantBans(t, banLog, "203.0.113.7", "203.0.113.11")
	if b, _ := os.ReadFile(access); !regexp.MustCompile(`(?m)^# .*relaykeeper.*gmail-domain-reputation.*\nexample\.com\s+REJECT\n`).Match(b) {
		t.Errorf("sender_access:\n%s\nwant a comment line and \"example.com REJECT\"", b)
	}
	// The encapsulated copies went through Postfix (and the filter) to the
	// fake Gmail, which took them; each carries the original as relayed,
	// byte for byte.
	for _, rcpt := range []string{"dmarc@gmail.test", "partner@gmail.test"} {
		enc := compWaitTx(t, gmail, 30*time.Second, func(tx harness.Transaction) bool {
			return tx.Accepted() && tx.To()[0] == rcpt && bytes.Contains(tx.Data, []byte("X-Relaykeeper-Encapsulated:"))
		})
		orig := compWaitTx(t, backup, time.Second, func(tx harness.Transaction) bool {
			return bytes.Contains(tx.Data, []byte("To: "+rcpt)) && !bytes.Contains(tx.Data, []byte("X-Relaykeeper-Encapsulated:"))
		})
		if got := compAttachment(t, enc.Data); !bytes.Equal(got, orig.Data) {
			t.Errorf("the attachment to %s differs from the original:\n%q\nwant\n%q", rcpt, got, orig.Data)
		}
	}
	encapsulated := compCountTx(gmail, func(tx harness.Transaction) bool {
		return bytes.Contains(tx.Data, []byte("X-Relaykeeper-Encapsulated:"))
	})

	// 2. Following: the log is rotated with copytruncate while the enforcer
	// runs, and a new client's refusal comes after it.
	f := harness.Start(t, harness.Binary(t), append([]string{"postfix-enforcer"}, args...)...)
	time.Sleep(time.Second)
	compCopyTruncate(t, pf.MailLogFile())
	compSend(t, pf.Addr(), companionMessages[5])
	compWait(t, 30*time.Second, "a ban line for 203.0.113.20 from the follower", func() bool {
		b, _ := os.ReadFile(banLog)
		return bytes.Contains(b, []byte(" 203.0.113.20\n"))
	})
	// More retries of the deferred message, now in the new file.
	compWaitRetries(t, pf, `to=<rate@gmail\.test>, .*status=deferred`, 2, 30*time.Second)
	time.Sleep(time.Second)
	f.Signal(syscall.SIGTERM)
	if code, err := f.Wait(20 * time.Second); code != 0 || err != nil {
		t.Fatalf("follower: exit %d, %v\nstderr:\n%s", code, err, f.Stderr())
	}
	t.Logf("postfix-enforcer (following):\n%s\nstderr:\n%s", f.Stdout(), f.Stderr())
	compWantLines(t, f.Stdout(), []string{`^\S+ ban client=203\.0\.113\.20 .*client_name=mx\.spam2\.test .*rule=gmail-unsolicited`})
	if strings.Count(f.Stdout(), " ban ")+strings.Count(f.Stdout(), " encapsulate ")+strings.Count(f.Stdout(), " block-domain ") != 1 {
		t.Errorf("the follower acted on more than the new refusal:\n%s", f.Stdout())
	}
	bans := compWantBans(t, banLog, "203.0.113.7", "203.0.113.11", "203.0.113.20")

	// 3. A restart acts on nothing twice: not on the old file's lines, not on
	// the deferred message's new retries, not on the copy.
	if again := enforcerOnce(t, nil, args...); strings.TrimSpace(again) != "" {
		t.Errorf("the restart acted again:\n%s", again)
	}
	if b, _ := os.ReadFile(banLog); string(b) != bans {
		t.Errorf("the restart changed the ban log:\n%s", b)
	}
	time.Sleep(2 * time.Second) // an encapsulated copy would be relayed by now
	if n := compCountTx(gmail, func(tx harness.Transaction) bool {
		return bytes.Contains(tx.Data, []byte("X-Relaykeeper-Encapsulated:"))
	}); n != encapsulated {
		t.Errorf("%d encapsulated copies reached Gmail; want %d", n, encapsulated)
	}
}

// startAmavisPostfix starts a private Postfix that takes mail for
// gmail.test from XCLIENT clients, hands every message to amavis (on the
// re-injection port it was started with), and relays what comes back to
// gmail; mainCF adds main.cf lines.
func startAmavisPostfix(t *testing.T, gmail *harness.FakeSMTP, amavis *fakeAmavis, mainCF ...string) *harness.Postfix {
	t.Helper()
	pf := companionPostfixWith(t, harness.PostfixOptions{
		Relayhost: harness.RelayhostFor(gmail.Addr()),
		MainCF:    append([]string{"content_filter = smtp-amavis:" + harness.RelayhostFor(amavis.addr())}, mainCF...),
		MasterCF: []string{
			"smtp-amavis unix - - n - 2 smtp -o smtp_data_done_timeout=60s",
			amavis.reinject + " inet n - n - - smtpd -o content_filter= -o receive_override_options=no_unknown_recipient_checks,no_header_body_checks,no_milters,no_address_mappings -o mynetworks=127.0.0.0/8 -o smtpd_relay_restrictions=permit_mynetworks,reject",
		},
	})
	amavis.setLog(pf.MailLogFile())
	return pf
}

// companionMessage is one client's message and Gmail's answer to it.
type companionMessage struct {
	ip, name, from, to string
	reply              string
}

// Gmail's replies, as it sends them (multi-line, the relay's address in
// brackets, a session id before "gsmtp").
var companionMessages = []companionMessage{
	{"203.0.113.7", "mx.spam.test", "bob@spam.test", "spam@gmail.test",
		"550-5.7.1 [127.0.0.1      12] Our system has detected that this message is\r\n550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\r\n550-5.7.1 this message has been blocked. Please visit\r\n550-5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError\r\n550 5.7.1 for more information. a640c23a62f3a-a7a3c1f4d2si1234567b.99 - gsmtp"},
	{"203.0.113.8", "mail.example.com", "news@example.com", "domain@gmail.test",
		"550-5.7.1 [127.0.0.1      12] Our system has detected that this message is\r\n550-5.7.1 likely suspicious due to the very low reputation of the sending\r\n550-5.7.1 domain. To best protect our users from spam, the message has been\r\n550-5.7.1 blocked. Please visit\r\n550 5.7.1  https://support.google.com/mail/answer/188131 for more information. 5b1f17b1804b1-4215c2e2b8dsi1234567f9.111 - gsmtp"},
	{"203.0.113.9", "mx.example.org", "carol@example.org", "dmarc@gmail.test",
		"550-5.7.26 Unauthenticated email from example.org is not accepted due to\r\n550-5.7.26 domain's DMARC policy. Please contact the administrator of\r\n550-5.7.26 example.org domain if this was a legitimate mail. To learn about the\r\n550-5.7.26 DMARC initiative, go to\r\n550 5.7.26  https://support.google.com/mail/?p=DmarcRejection d2e1a72fcca58-70d1b2a8c5asi1234567b3a.318 - gsmtp"},
	{"198.51.100.9", "partner.example", "eve@partner.example", "partner@gmail.test",
		"550-5.7.1 [127.0.0.1      19] Gmail has detected that this message is\r\n550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\r\n550-5.7.1 this message has been blocked. For more information, go to\r\n550 5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError 41be03b00d2f7-6a1b2c3d4e5si1234567a12.345 - gsmtp"},
	{"203.0.113.11", "mx.rate.test", "dan@rate.test", "rate@gmail.test",
		"421-4.7.0 [127.0.0.1      15] Our system has detected that this message is\r\n421-4.7.0 suspicious due to the very low reputation of the sending IP address.\r\n421-4.7.0 To best protect our users from spam, the message has been blocked.\r\n421-4.7.0 Please visit\r\n421 4.7.0  https://support.google.com/mail/answer/188131 for more information. %d - gsmtp"},
	{"203.0.113.20", "mx.spam2.test", "fred@spam2.test", "spam2@gmail.test",
		"550-5.7.1 [127.0.0.1      12] Our system has detected that this message is\r\n550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\r\n550-5.7.1 this message has been blocked. Please visit\r\n550-5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError\r\n550 5.7.1 for more information. b750c23a62f3a-a7a3c1f4d2si7654321b.12 - gsmtp"},
}

var (
	compMu    sync.Mutex
	compTries int // a new session id for each of rate@'s deferrals
)

// compGmailDecide refuses each test recipient's message at the end of DATA
// with Gmail's reply, and takes everything else: bounces, and the
// encapsulated copies.
func compGmailDecide(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
	if stage != harness.StageEndOfData || len(tx.Rcpts) == 0 || bytes.Contains(tx.Data, []byte("X-Relaykeeper-Encapsulated:")) {
		return harness.Response{}
	}
	for _, m := range companionMessages {
		if strings.EqualFold(tx.Rcpts[0].Addr, m.to) {
			reply := m.reply
			if strings.Contains(reply, "%d") {
				compMu.Lock()
				compTries++
				reply = fmt.Sprintf(reply, compTries)
				compMu.Unlock()
			}
			return harness.Response{Reply: reply}
		}
	}
	return harness.Response{}
}

// compSend submits m to Postfix as its client would: XCLIENT makes Postfix
// log (and put in Received) the client's address and name.
func compSend(t *testing.T, addr string, m companionMessage) {
	t.Helper()
	local := strings.SplitN(m.to, "@", 2)[0]
	out, code := harness.Swaks(t, "--server", addr, "--xclient-addr", m.ip, "--xclient-name", m.name,
		"--from", m.from, "--to", m.to, "--header", "Subject: "+local+" test",
		"--header", "Message-Id: <"+local+"-1@companion.test>", "--header", "From: "+m.from,
		"--attach-type", "application/octet-stream", "--attach-name", "data.bin", "--attach", "@"+compBinaryFile(t))
	if code != 0 {
		t.Fatalf("swaks for %s: exit %d\n%s", m.to, code, out)
	}
}

// compBinaryFile writes 3000 bytes of every value, for an attachment that is
// base64 in the message.
func compBinaryFile(t *testing.T) string {
	t.Helper()
	b := make([]byte, 3000)
	for i := range b {
		b[i] = byte(i * 7)
	}
	p := filepath.Join(t.TempDir(), "data.bin")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// compAttachment returns the message/rfc822 part of an encapsulated message.
func compAttachment(t *testing.T, data []byte) []byte {
	t.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("encapsulated message: %v", err)
	}
	_, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil {
		t.Fatalf("encapsulated message: Content-Type %q: %v", msg.Header.Get("Content-Type"), err)
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		part, err := mr.NextRawPart()
		if err != nil {
			t.Fatalf("encapsulated message: no message/rfc822 part: %v\n%s", err, data)
		}
		if strings.HasPrefix(part.Header.Get("Content-Type"), "message/rfc822") {
			b, err := io.ReadAll(part)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

// compMirrorBackup appends what the backup server receives to an mbox file, as
// local(8) delivering to a mailbox would (mboxrd quoting, LF line ends),
// every 50ms until stopped.
func compMirrorBackup(backup *harness.FakeSMTP, path string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n := 0
		for {
			txs := backup.Transactions()
			for ; n < len(txs); n++ {
				if !txs[n].Accepted() {
					continue
				}
				var b bytes.Buffer
				fmt.Fprintf(&b, "From %s  %s\n", txs[n].MailFrom, time.Now().Format(time.ANSIC))
				for _, line := range strings.SplitAfter(strings.ReplaceAll(string(txs[n].Data), "\r\n", "\n"), "\n") {
					if strings.HasPrefix(strings.TrimLeft(line, ">"), "From ") {
						b.WriteByte('>')
					}
					b.WriteString(line)
				}
				b.WriteString("\n")
				f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
				if err == nil {
					f.Write(b.Bytes())
					f.Close()
				}
			}
			select {
			case <-done:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// compCopyTruncate rotates path as logrotate's copytruncate does.
func compCopyTruncate(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".1", b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
}

func compWait(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", timeout, what)
		}
	}
}

// compWaitLog waits for a mail-log line matching re.
func compWaitLog(t *testing.T, pf *harness.Postfix, re string, timeout time.Duration) {
	t.Helper()
	compWaitCount(t, pf, re, 1, timeout)
}

// compWaitRetries waits until n lines of the current mail-log file match
// re, lines that Postfix's retries of a deferred message write; it asks
// Postfix for queue runs meanwhile (see FlushUntil).
func compWaitRetries(t *testing.T, pf *harness.Postfix, re string, n int, timeout time.Duration) {
	t.Helper()
	rx := regexp.MustCompile(`(?m)` + re)
	pf.FlushUntil(t, timeout, fmt.Sprintf("%d mail-log lines matching %s", n, re), func() bool {
		return len(rx.FindAllString(pf.MailLog(), -1)) >= n
	})
}

// compWaitCount waits until n lines of the current mail-log file match re.
func compWaitCount(t *testing.T, pf *harness.Postfix, re string, n int, timeout time.Duration) {
	t.Helper()
	rx := regexp.MustCompile(`(?m)` + re)
	compWait(t, timeout, fmt.Sprintf("%d mail-log lines matching %s", n, re), func() bool {
		return len(rx.FindAllString(pf.MailLog(), -1)) >= n
	})
}

// compWantLines checks that out has a line matching each pattern.
func compWantLines(t *testing.T, out string, patterns []string) {
	t.Helper()
	for _, p := range patterns {
		if !regexp.MustCompile(`(?m)` + p).MatchString(out) {
			t.Errorf("no line matching %s in:\n%s", p, out)
		}
	}
}

// compWantBans checks that the ban log holds one relay-enforcer "bannable"
// line for each ip, in order, and returns it.
func compWantBans(t *testing.T, path string, ips ...string) string {
	t.Helper()
	got, b := banLogIPs(path)
	if strings.Join(got, " ") != strings.Join(ips, " ") {
		t.Errorf("ban log bans %q; want %q:\n%s", got, ips, b)
	}
	return string(b)
}

// compWantBanSet is compWantBans in any order: for clients whose messages
// Postfix may deliver, and log, in either order.
func compWantBanSet(t *testing.T, path string, ips ...string) {
	t.Helper()
	got, b := banLogIPs(path)
	if !slices.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(ips))) {
		t.Errorf("ban log bans %q; want %q in any order:\n%s", got, ips, b)
	}
}

// banLogIPs are the addresses of the ban log's relay-enforcer "bannable"
// lines, in order, and the log.
func banLogIPs(path string) ([]string, []byte) {
	b, _ := os.ReadFile(path)
	rx := regexp.MustCompile(`(?m)^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ relay-enforcer\[\d+\]: bannable .* (\S+)$`)
	var got []string
	for _, m := range rx.FindAllStringSubmatch(string(b), -1) {
		got = append(got, m[1])
	}
	return got, b
}

func compWaitTx(t *testing.T, f *harness.FakeSMTP, timeout time.Duration, match func(harness.Transaction) bool) harness.Transaction {
	t.Helper()
	var found harness.Transaction
	compWait(t, timeout, "a matching transaction at "+f.Addr(), func() bool {
		for _, tx := range f.Transactions() {
			if match(tx) {
				found = tx
				return true
			}
		}
		return false
	})
	return found
}

func compCountTx(f *harness.FakeSMTP, match func(harness.Transaction) bool) int {
	n := 0
	for _, tx := range f.Transactions() {
		if match(tx) {
			n++
		}
	}
	return n
}

// fakeAmavis is an amavis-style content filter: it takes a message over
// SMTP, re-injects it into Postfix's re-injection smtpd, logs amavis's
// summary line to the mail log, and answers as amavis does.
type fakeAmavis struct {
	ln       net.Listener
	reinject string
	mu       sync.Mutex // guards logPath, noXforward and n
	logPath  string
	n        int
	// noXforward makes it log as amavis does when Postfix sends no
	// XFORWARD: its client is 127.0.0.1, and the "originating" address is
	// its guess from the oldest Received field, which the sender wrote.
	noXforward bool
	wg         sync.WaitGroup
}

func startFakeAmavis(t *testing.T, reinject string) *fakeAmavis {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a := &fakeAmavis{ln: ln, reinject: reinject}
	a.wg.Add(1)
	go func() {
		// Ends when the listener is closed at the end of the test.
		defer a.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			a.wg.Add(1)
			go func() { defer a.wg.Done(); a.serve(t, c) }()
		}
	}()
	t.Cleanup(func() { ln.Close(); a.wg.Wait() })
	return a
}

func (a *fakeAmavis) addr() string { return a.ln.Addr().String() }

func (a *fakeAmavis) setLog(path string) {
	a.mu.Lock()
	a.logPath = path
	a.mu.Unlock()
}

var (
	amavisReceivedClient = regexp.MustCompile(`(?m)^Received: from \S+ \((\S+) \[([^\]]+)\]\)`)
	amavisReceivedID     = regexp.MustCompile(`\(Postfix\)(?: with \S+)? id ([0-9A-Za-z]+)`)
	amavisQueuedAs       = regexp.MustCompile(`queued as ([0-9A-Za-z]+)`)
)

// serve runs one SMTP session; it ends when the client quits or the
// connection fails (closed at the end of the test by Postfix's stop).
func (a *fakeAmavis) serve(t *testing.T, c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Minute))
	r := textproto.NewReader(bufio.NewReader(c))
	w := bufio.NewWriter(c)
	reply := func(s string) { w.WriteString(s + "\r\n"); w.Flush() }
	reply("220 amavis.companion.test ESMTP amavisd-new service ready")
	var from string
	var rcpts []string
	for {
		line, err := r.ReadLine()
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "EHLO", "HELO":
			reply("250-amavis.companion.test\r\n250-8BITMIME\r\n250 ENHANCEDSTATUSCODES")
		case "MAIL":
			from, rcpts = compAngle(arg), nil
			reply("250 2.1.0 Sender " + "<" + from + "> OK")
		case "RCPT":
			rcpts = append(rcpts, compAngle(arg))
			reply("250 2.1.5 Recipient OK")
		case "DATA":
			reply("354 End data with <CR><LF>.<CR><LF>")
			data, err := r.ReadDotBytes()
			if err != nil {
				return
			}
			reply(a.pass(t, from, rcpts, data))
		case "RSET", "NOOP":
			reply("250 2.0.0 Ok")
		case "QUIT":
			reply("221 2.0.0 Bye")
			return
		default:
			reply("502 5.5.1 Error: command not implemented")
		}
	}
}

func compAngle(arg string) string {
	_, a, _ := strings.Cut(arg, "<")
	a, _, _ = strings.Cut(a, ">")
	return a
}

// pass re-injects a message and logs it as amavis would, then returns the
// reply to Postfix.
func (a *fakeAmavis) pass(t *testing.T, from string, rcpts []string, data []byte) string {
	c, err := smtp.Dial(a.reinject)
	if err != nil {
		return "451 4.5.0 re-injection failed: " + err.Error()
	}
	defer c.Close()
	if err := c.Hello("amavis.companion.test"); err != nil {
		return "451 4.5.0 re-injection failed: " + err.Error()
	}
	if err := c.Mail(from, nil); err != nil {
		return "451 4.5.0 re-injection failed: " + err.Error()
	}
	for _, rc := range rcpts {
		if err := c.Rcpt(rc, nil); err != nil {
			return "451 4.5.0 re-injection failed: " + err.Error()
		}
	}
	dw, err := c.Data()
	if err != nil {
		return "451 4.5.0 re-injection failed: " + err.Error()
	}
	dw.Write(data)
	resp, err := dw.CloseWithResponse()
	if err != nil {
		return "451 4.5.0 re-injection failed: " + err.Error()
	}
	c.Quit()
	m := amavisQueuedAs.FindStringSubmatch(resp.StatusText)
	if m == nil {
		return "451 4.5.0 re-injection: no queue id in " + resp.StatusText
	}
	newID := m[1]

	// Amavis's %a and %e: the original client, here from the Received
	// field Postfix added; the queue id is the one it gave the message.
	ip, qid := "127.0.0.1", "unknown"
	if cm := amavisReceivedClient.FindSubmatch(data); cm != nil {
		ip = string(cm[2])
	}
	client := "[" + ip + "]"
	a.mu.Lock()
	if a.noXforward {
		all := amavisReceivedClient.FindAllSubmatch(data, -1)
		client, ip = "LOCAL [127.0.0.1]", string(all[len(all)-1][2])
	}
	a.mu.Unlock()
	if im := amavisReceivedID.FindSubmatch(data); im != nil {
		qid = string(im[1])
	}
	msgID := ""
	if msg, err := mail.ReadMessage(bytes.NewReader(data)); err == nil {
		msgID = msg.Header.Get("Message-Id")
	}
	to := make([]string, len(rcpts))
	for i, rc := range rcpts {
		to[i] = "<" + rc + ">"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n++
	pid := os.Getpid() % 100000
	line := fmt.Sprintf("%s postfix amavis[%d]: (%05d-%02d) Passed CLEAN {RelayedInbound}, %s:%d [%s] <%s> -> %s, Queue-ID: %s, Message-ID: %s, mail_id: fake%d, Hits: -0.1, size: %d, queued_as: %s, 12 ms\n",
		time.Now().Format(time.Stamp), pid, pid, a.n, client, 40000+a.n, ip, from, strings.Join(to, ","), qid, msgID, a.n, len(data), newID)
	if f, err := os.OpenFile(a.logPath, os.O_WRONLY|os.O_APPEND, 0); err == nil {
		f.WriteString(line) // one write: O_APPEND keeps it whole among Postfix's lines
		f.Close()
	} else {
		t.Errorf("fake amavis: %v", err)
	}
	host, port, _ := net.SplitHostPort(a.reinject)
	text := strings.TrimPrefix(resp.StatusText, "2.0.0 ")
	return fmt.Sprintf("250 2.0.0 from MTA(smtp:[%s]:%s): 250 2.0.0 %s", host, port, text)
}
