package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// gm25Send speaks SMTP to Postfix by hand: XCLIENT gives it the client ip
// with host name name, helo is the client's HELO, cmds are MAIL and RCPT,
// data the whole content (CRLF line ends, ending in CRLF). It returns the
// queue id of the message.
func gm25Send(t *testing.T, addr, ip, name, helo string, cmds []string, data string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	expect := func(cmd, want string) string {
		t.Helper()
		if cmd != "" {
			fmt.Fprintf(c, "%s\r\n", cmd)
		}
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("after %q: %v", cmd, err)
			}
			if len(line) < 4 || line[3] != '-' {
				if !strings.HasPrefix(line, want) {
					t.Fatalf("%q: Postfix said %q; want %s", cmd, strings.TrimSpace(line), want)
				}
				return line
			}
		}
	}
	expect("", "220")
	expect("EHLO client.test", "250")
	expect("XCLIENT ADDR="+ip+" NAME="+name, "220")
	expect("EHLO "+helo, "250")
	for _, cmd := range cmds {
		expect(cmd, "250")
	}
	expect("DATA", "354")
	last := expect(data+".", "250")
	expect("QUIT", "221")
	m := regexp.MustCompile(`queued as (\w+)`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("no queue id in %q", last)
	}
	return m[1]
}

// TestGM25CompanionWarnLinesSteerNothing: a real Postfix that logs header
// and body lines (header_checks and body_checks WARN, as many sites do to
// watch for spam) puts text a client writes into its mail log, with the
// client's HELO. A victim (198.51.100.7) sends a good message first; a
// spammer (203.0.113.81) then sends spam whose Subject, other header
// fields, body and HELO hold a whole delivery line of Gmail refusing the
// victim's message (its real queue id), a client= line for that id, and
// the same folded, encoded and cut at Postfix's limits. Only the spammer
// is banned; the victim's domain is never blocked.
func TestGM25CompanionWarnLinesSteerNothing(t *testing.T) {
	t.Parallel()
	pf, _ := hostileGmailPostfix(t,
		"header_checks = regexp:{{/^/ WARN}}",
		"body_checks = regexp:{{/./ WARN}}")
	dir := t.TempDir()
	vq := gm25Send(t, pf.Addr(), "198.51.100.7", "mx.victim.test", "mx.victim.test",
		[]string{"MAIL FROM:<alice@victim.example>", "RCPT TO:<friend@gmail.test>"},
		"Subject: hello\r\nMessage-Id: <v1@victim.example>\r\n\r\nhi\r\n")
	compWaitLog(t, pf, `to=<friend@gmail\.test>, .*status=sent`, 30*time.Second)

	relay := regexp.MustCompile(`relay=(127\.0\.0\.1\[127\.0\.0\.1\]:\d+)`).FindStringSubmatch(pf.MailLog())[1]
	refusal := func(q string) string {
		return q + ": to=<friend@gmail.test>, relay=" + relay + ", delay=0.1, delays=0/0/0/0.1, dsn=5.7.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550-5.7.1 [127.0.0.1 12] Our system has detected that this message is likely unsolicited mail. 550 5.7.1 suspicious due to the very low reputation of the sending domain. - gsmtp (in reply to end of DATA command))"
	}
	stamp := "Dec  7 13:00:00 localhost postfix/smtp[4242]: "
	fake := refusal(vq)
	clientLine := stamp[:len(stamp)-len("smtp[4242]: ")] + "smtpd[4241]: " + vq + ": client=mx.victim.test[198.51.100.7]"
	helo := "x]: " + strings.ReplaceAll(fake[:60], " ", "_")
	head := "Subject: " + fake + "\r\n" +
		"X-Fold: a\r\n\t" + stamp + fake + "\r\n" +
		"X-Client: \r\n " + clientLine + "\r\n" +
		"X-Enc: =?utf-8?q?=0A" + strings.ReplaceAll(stamp+fake, " ", "_")[:200] + "?=\r\n" +
		"X-Long: " + strings.Repeat("y", 1900) + " " + stamp + fake + "\r\n" +
		"Message-Id: <s1@attacker.example>\r\n\r\n"
	body := fake + "\r\n" + stamp + fake + "\r\n" + clientLine + "\r\n" + strings.Repeat("z", 1990) + "\n" + stamp + fake + "\r\n"
	gm25Send(t, pf.Addr(), "203.0.113.81", "mx.attacker.test", helo,
		[]string{"MAIL FROM:<eve@attacker.example>", "RCPT TO:<spam@gmail.test>"}, head+body)
	// A second spam to the domain-reputation recipient, as
	// "...@victim.example" in the HELO's and Subject's words only.
	gm25Send(t, pf.Addr(), "203.0.113.82", "mx.attacker2.test", "mx.victim.test",
		[]string{"MAIL FROM:<eve@attacker2.example>", "RCPT TO:<domain@gmail.test>"},
		"Subject: "+stamp+vq+": from=<alice@victim.example>, size=300, nrcpt=1 (queue active)\r\nMessage-Id: <s2@attacker2.example>\r\n\r\nbuy\r\n")
	compWaitLog(t, pf, `to=<spam@gmail\.test>, .*status=bounced`, 30*time.Second)
	compWaitLog(t, pf, `to=<domain@gmail\.test>, .*status=bounced`, 30*time.Second)
	log := pf.MailLog()
	if !strings.Contains(log, "warning: header Subject: "+vq) && !strings.Contains(log, "warning: body "+vq) {
		t.Errorf("the WARN lines did not reach the log:\n%s", log)
	}
	out := companionEnforcer(t, pf, dir, "127.0.0.0/8\n", "--trusted-upstream", "127.0.0.1")
	compWantBans(t, filepath.Join(dir, "bans.log"), "203.0.113.81")
	for _, bad := range []string{"198.51.100.7", "victim", "queue=" + vq} {
		if strings.Contains(out, bad) {
			t.Errorf("the enforcer's output mentions %q:\n%s", bad, out)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "sender_access"))
	if regexp.MustCompile(`(?m)^[^#\n]*victim`).Match(b) || !regexp.MustCompile(`(?m)^attacker2\.example\s+REJECT$`).Match(b) {
		t.Errorf("sender_access:\n%s\nwant attacker2.example blocked, and nothing of victim.example", b)
	}
	t.Logf("Postfix's log:\n%s", log)
}

// gm25Multi is one multi-recipient message of TestGM25MultiRecipient: the
// replies Gmail gives its recipients at RCPT (by recipient) and at the end
// of data (one reply for the transaction), and what must follow.
type gm25Multi struct {
	ip, from string
	to       []string
	atRcpt   map[string]string
	atData   string
	copies   []string // the recipients that get one encapsulated copy
	ban      bool
	block    string
}

// TestGM25MultiRecipient: Gmail's replies to a message with several
// recipients, as a store-and-forward relay and a proxy relay them: one
// recipient refused at RCPT for itself (no such user, receiving too
// quickly) and the others at the end of data for the message; the action
// the document gives happens once for the message (one ban, one block),
// an encapsulated copy goes to each recipient the end-of-data refusal
// covered and to no other, and nothing else is sanctioned. (The mail
// log's block line for the second recipient says added=false: listed
// already, as docs/maillog.md has it.)
func TestGM25MultiRecipient(t *testing.T) {
	t.Parallel()
	noUser := foldReply("550", "5.1.1", "The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. For more information, go to https://support.google.com/mail/?p=NoSuchUser", 60)
	tooQuick := foldReply("450", "4.2.1", "The user you are trying to contact is receiving mail too quickly. Please resend your message at a later time. If the user is able to receive mail at that time, your message will be delivered.", 50)
	dmarc := func(d string) string {
		return foldReply("550", "5.7.26", "Unauthenticated email from "+d+" is not accepted due to domain's DMARC policy. Please contact the administrator of "+d+" domain if this was a legitimate mail. To learn about the DMARC initiative, go to https://support.google.com/mail/?p=DmarcRejection", 55)
	}
	unauth := foldReply("421", "4.7.26", "This email has been rate limited because it is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM. Authentication results: DKIM = did not pass SPF [x.example] with ip: [192.0.2.25] = did not pass", 64)
	spam := foldReply("550", "5.7.1", "[192.0.2.25 12] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked. Please visit https://support.google.com/mail/?p=UnsolicitedMessageError for more information.", 70)
	spf := func(d string) string {
		return foldReply("421", "4.7.28", "Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain ["+d+" 30]. To protect our users from spam, mail sent from your SPF domain has been temporarily rate limited.", 60)
	}
	for _, proxy := range []bool{false, true} {
		mode := map[bool]string{false: "server", true: "proxy"}[proxy]
		n := map[bool]int{false: 1, true: 2}[proxy]
		p := fmt.Sprintf("m%d", n)
		r := func(s string) string { return p + s + "@gmail.test" }
		msgs := []gm25Multi{
			{ip: fmt.Sprintf("127.25.%d.10", n), from: "a@" + p + "dmarc.example", to: []string{r("a"), r("b"), r("c")},
				atRcpt: map[string]string{r("a"): noUser, r("b"): tooQuick}, atData: dmarc(p + "dmarc.example"), copies: []string{r("c")}},
			{ip: fmt.Sprintf("127.25.%d.11", n), from: "a@" + p + "unauth.example", to: []string{r("d"), r("e")},
				atData: unauth, copies: []string{r("d"), r("e")}},
			{ip: fmt.Sprintf("127.25.%d.12", n), from: "a@" + p + "spam.example", to: []string{r("f"), r("g"), r("h")},
				atRcpt: map[string]string{r("f"): noUser}, atData: spam, ban: true},
			{ip: fmt.Sprintf("127.25.%d.13", n), from: "a@" + p + "spf.example", to: []string{r("i"), r("j")},
				atData: spf(p + "spf.example"), block: p + "spf.example"},
		}
		var mu sync.Mutex
		byFirst := map[string]gm25Multi{}
		for _, m := range msgs {
			byFirst[m.from] = m
		}
		ids := 0
		decide := func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			mu.Lock()
			defer mu.Unlock()
			m, ok := byFirst[strings.ToLower(tx.MailFrom)]
			if !ok {
				return harness.Response{}
			}
			ids++
			id := fmt.Sprintf("gm25%dsi%d", ids, ids*31)
			switch stage {
			case harness.StageRcpt:
				if s, ok := m.atRcpt[strings.ToLower(arg)]; ok {
					return harness.Response{Reply: strings.ReplaceAll(s, "{id}", id)}
				}
			case harness.StageEndOfData:
				return harness.Response{Reply: strings.ReplaceAll(m.atData, "{id}", id)}
			}
			return harness.Response{}
		}
		gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", Decide: decide,
			Capabilities: []string{"SIZE 157286400", "8BITMIME", "ENHANCEDSTATUSCODES", "PIPELINING"}})
		rl := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: proxy})
		for _, m := range msgs {
			tx, err := sendFrom(rl.addr(), m.ip, m.from, m.to, gmailMessage(m.from, "gm25 "+m.from))
			if err != nil {
				t.Fatalf("%s: %s: %v", mode, m.from, err)
			}
			t.Logf("%s: %s heard %q", mode, m.from, heardReply(tx))
		}
		copiesTo := func(rcpt string) int {
			c := 0
			for _, tx := range gmail.Transactions() {
				if tx.Accepted() && strings.EqualFold(tx.MailFrom, relayAddress) && slices.Contains(tx.To(), rcpt) {
					c++
				}
			}
			return c
		}
		waitFor(15*time.Second, func() bool {
			for _, m := range msgs {
				for _, c := range m.copies {
					if copiesTo(c) == 0 {
						return false
					}
				}
			}
			return true
		})
		time.Sleep(2 * time.Second)
		bans, _ := os.ReadFile(enforceFile(rl, "bans"))
		access, _ := os.ReadFile(enforceFile(rl, "sender_access"))
		for _, m := range msgs {
			want := map[string]int{}
			for _, c := range m.copies {
				want[c] = 1
			}
			for _, to := range m.to {
				if got := copiesTo(to); got != want[to] {
					t.Errorf("%s: %s: %d encapsulated copies to %s; want %d", mode, m.from, got, to, want[to])
				}
			}
			es := enforceEvents(rl, m.ip)
			nBan, nBlock := 0, 0
			for _, e := range es {
				switch e.Event {
				case "ban":
					nBan++
				case "block":
					if e.Get("added") == "true" {
						nBlock++
					}
				}
			}
			if banned := strings.Contains(string(bans), m.ip+" "); banned != m.ban || nBan != map[bool]int{true: 1}[m.ban] {
				t.Errorf("%s: %s: client %s banned %v, %d ban events; want %v once\nevents: %v", mode, m.from, m.ip, banned, nBan, m.ban, fieldsOf(es))
			}
			dom := strings.TrimPrefix(m.from, "a@")
			blocked := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(dom) + `\s`).Match(access)
			if blocked != (m.block != "") || nBlock != map[bool]int{true: 1}[m.block != ""] {
				t.Errorf("%s: %s: domain blocked %v, %d block events; want %v once\nevents: %v", mode, m.from, blocked, nBlock, m.block != "", fieldsOf(es))
			}
		}
	}
}

// TestGM25WelcomelistEdges: Gmail refuses every message as spam; the
// welcomelist names clients as IPv4-mapped IPv6 addresses and blocks
// (dotted and hexadecimal), a CIDR block and a range whose edges are
// probed from both sides, and is rewritten while the relay runs (in place,
// and by rename). A listed client is spared (its message encapsulated),
// never banned; the client just outside an edge is banned.
func TestGM25WelcomelistEdges(t *testing.T) {
	t.Parallel()
	spam := foldReply("550", "5.7.1", "[192.0.2.25 12] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked. Please visit https://support.google.com/mail/?p=UnsolicitedMessageError for more information.", 66)
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test",
		Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			if stage == harness.StageEndOfData && !strings.EqualFold(tx.MailFrom, relayAddress) && tx.MailFrom != "" {
				return harness.Response{Reply: strings.ReplaceAll(spam, "{id}", "gm25w")}
			}
			return harness.Response{}
		}})
	welcome := "::ffff:127.25.5.5\n" +
		"127.25.3.0/25\n" +
		"::ffff:127.25.4.0/120  # 127.25.4.0/24\n" +
		"127.25.6.10-127.25.6.20\n" +
		"::ffff:7f19:808\n" + // 127.25.8.8
		"::ffff:127.25.9.10-::ffff:127.25.9.11\n"
	rl := startEnforcer(t, gmail.Addr(), enforceOpts{welcome: welcome})
	wl := ""
	for i, a := range rl.args {
		if a == "--welcomelist" {
			wl = rl.args[i+1]
		}
	}
	if wl == "" {
		t.Fatal("no --welcomelist in the relay's arguments")
	}
	send := func(ip string) {
		t.Helper()
		from := "x@" + strings.ReplaceAll(ip, ".", "-") + ".example"
		if _, err := sendFrom(rl.addr(), ip, from, []string{"w" + ip + "@gmail.test"}, gmailMessage(from, "gm25 "+ip)); err != nil {
			t.Fatalf("%s: %v", ip, err)
		}
	}
	check := func(spared, banned []string) {
		t.Helper()
		want := map[string]string{}
		for _, ip := range spared {
			want[ip] = "spare+encapsulate"
		}
		for _, ip := range banned {
			want[ip] = "ban"
		}
		waitFor(10*time.Second, func() bool {
			for ip, w := range want {
				if actionOf(enforceEvents(rl, ip)) != w {
					return false
				}
			}
			return true
		})
		for ip, w := range want {
			if got := actionOf(enforceEvents(rl, ip)); got != w {
				t.Errorf("client %s: %s; want %s", ip, got, w)
			}
		}
	}
	first := []string{"127.25.5.5", "127.25.3.0", "127.25.3.127", "127.25.4.0", "127.25.4.255", "127.25.6.10", "127.25.6.20", "127.25.8.8", "127.25.9.10", "127.25.9.11"}
	outside := []string{"127.25.3.128", "127.25.6.9", "127.25.6.21", "127.25.5.6", "127.25.9.12"}
	for _, ip := range append(append([]string{}, first...), outside...) {
		send(ip)
	}
	check(first, outside)

	// Rewritten in place (truncated, then written), as an editor that
	// keeps the file's inode does; then replaced by rename.
	if err := os.WriteFile(wl, []byte(welcome+"127.25.10.10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second) // the relay looks at most every 3 s
	send("127.25.10.10")
	send("127.25.5.5")
	tmp := wl + ".new"
	if err := os.WriteFile(tmp, []byte(welcome+"127.25.11.11\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, wl); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * time.Second)
	send("127.25.11.11")
	send("127.25.10.10") // no longer listed
	check([]string{"127.25.11.11"}, nil)
	// Listed, then not: spared once, then banned.
	waitFor(10*time.Second, func() bool { return actionOf(enforceEvents(rl, "127.25.10.10")) == "spare+encapsulate+ban" })
	if got := actionOf(enforceEvents(rl, "127.25.10.10")); got != "spare+encapsulate+ban" {
		t.Errorf("127.25.10.10 listed, then not: %s; want spare+encapsulate+ban", got)
	}
	bans, _ := os.ReadFile(enforceFile(rl, "bans"))
	for _, ip := range append(first, "127.25.11.11") {
		if regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(ip) + `[ /]`).Match(bans) {
			t.Errorf("welcomelisted %s is in the ban list:\n%s", ip, bans)
		}
	}
}

// TestGM25PaceReplies: Gmail's pace replies (gmail-replies.md, pace), at
// RCPT and at the end of data, 4xx as Gmail sends them and closing the
// session after a 421, and the IP-rate ban verdict before the content
// (the greeting, MAIL, RCPT): the queue slows the destination down (a
// pace line, verdict=pace), or the one recipient for "receiving mail too
// quickly" (pace-recipient), keeps the mail, and sanctions nobody.
func TestGM25PaceReplies(t *testing.T) {
	t.Parallel()
	rate := foldReply("421", "4.7.28", "Gmail has detected an unusual rate of email originating from your IP address 127.0.0.1. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. For more information, go to https://support.google.com/mail/?p=UnsolicitedRateLimitError", 62)
	later := foldReply("421", "4.7.0", "Try again later, closing connection.", 60)
	busy := foldReply("421", "4.4.5", "Server busy, try again later.", 60)
	atRate := foldReply("450", "4.2.1", "The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered. Please resend your message at a later time. If the user is able to receive mail at that time, your message will be delivered.", 58)
	quick := foldReply("450", "4.2.1", "The user you are trying to contact is receiving mail too quickly. Please resend your message at a later time. If the user is able to receive mail at that time, your message will be delivered.", 66)
	ipRate := foldReply("421", "4.7.0", "[127.0.0.1 15] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. Please visit https://support.google.com/mail/?p=UnsolicitedRateLimitError to review our Bulk Email Senders Guidelines.", 60)
	ipRate5 := foldReply("550", "5.7.28", "[127.0.0.1 1] There is an unusual rate of unsolicited email originating from your IP address. To protect our users from spam, mail sent from your IP address has been blocked. To review our bulk email senders guidelines, go to https://support.google.com/mail/?p=UnsolicitedIPError", 64)
	cases := []struct {
		name    string
		stage   harness.Stage
		reply   string
		verdict string
	}{
		{"rate rcpt", harness.StageRcpt, rate, "pace"},
		{"rate data", harness.StageEndOfData, rate, "pace"},
		{"later rcpt", harness.StageRcpt, later, "pace"},
		{"later mail", harness.StageMail, later, "pace"},
		{"later data", harness.StageEndOfData, later, "pace"},
		{"busy greeting", harness.StageConnect, busy, "pace"},
		{"busy data", harness.StageEndOfData, busy, "pace"},
		{"at a rate rcpt", harness.StageRcpt, atRate, "pace-recipient"},
		{"at a rate data", harness.StageEndOfData, atRate, "pace-recipient"},
		{"too quickly rcpt", harness.StageRcpt, quick, "pace-recipient"},
		{"too quickly data", harness.StageEndOfData, quick, "pace-recipient"},
		{"ip rate greeting", harness.StageConnect, ipRate, "pace"},
		{"ip rate mail", harness.StageMail, ipRate, "pace"},
		{"ip rate rcpt", harness.StageRcpt, ipRate, "pace"},
		{"ip rate 5xx rcpt", harness.StageRcpt, ipRate5, "pace"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			var said atomic.Bool
			gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test",
				Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
					if stage != c.stage || (stage == harness.StageRcpt && arg != "p@gmail.test") || !said.CompareAndSwap(false, true) {
						return harness.Response{}
					}
					r := harness.Response{Reply: strings.ReplaceAll(c.reply, "{id}", fmt.Sprintf("gm25p%dsi%d", i, i*7))}
					if strings.HasPrefix(c.reply, "421") {
						r.Fault = harness.Close421
					}
					return r
				}})
			rl := startEnforcer(t, gmail.Addr(), enforceOpts{config: "[enforce]\nban_delay = \"0s\"\n[delivery]\nminimal_backoff_time = \"60s\"\nmaximal_backoff_time = \"60s\"\n"})
			ip := fmt.Sprintf("127.25.20.%d", 10+i)
			tx, err := sendFrom(rl.addr(), ip, "a@pace.example", []string{"p@gmail.test"}, gmailMessage("a@pace.example", "gm25 pace "+c.name))
			if err != nil || tx.Final.code() != 250 {
				t.Fatalf("send: %v; %+v", err, tx)
			}
			id := queuedID(t, tx.Final)
			pace := rl.waitEvent("pace", 10*time.Second, nil)
			if pace == nil || pace.Get("verdict") != c.verdict {
				t.Errorf("pace line %v; want verdict=%s", pace, c.verdict)
			}
			time.Sleep(500 * time.Millisecond)
			if st := msgState(rl.spool, id); st != "ready" {
				t.Errorf("message %s; want it kept (ready)", st)
			}
			for _, e := range enforceEvents(rl, ip) {
				if e.Event != "admin-alert" && e.Event != "report" {
					t.Errorf("event %v; want nobody sanctioned", e.Fields)
				}
			}
			for _, e := range rl.events("delivery") {
				if r := e.Get("result"); r == "bounced" {
					t.Errorf("delivery %v; want the mail kept", e.Fields)
				}
			}
		})
	}
}

// TestGM25CompanionCutBeforeStage: a syslog daemon that takes shorter
// messages than Postfix's 2000 bytes (1024, RFC 3164's; busybox's fewer)
// cuts a delivery line wherever its length puts the cut. Cut one byte
// short, the line still ends in ")": "... - gsmtp (in reply to RCPT TO
// command)". Its reply then reads as Gmail's words with no stage, and
// Gmail's "unusual rate of unsolicited mail originating from your IP
// address" at RCPT, MAIL, the DATA command or EHLO (the relay's address,
// said to whichever message came next) banned that message's client as
// if said at the end of its data (with --upstream, which takes replies
// that do not end in "gsmtp"). Whole, the same lines ban nobody; cut, they
// are reported as cut.
func TestGM25CompanionCutBeforeStage(t *testing.T) {
	t.Parallel()
	ipRate := gm19Fold("421", "4.7.0", "[192.0.2.25 15] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. Please visit https://support.google.com/mail/?p=UnsolicitedRateLimitError to review our Bulk Email Senders Guidelines.", "c1")
	var msgs []gm19Msg
	n := 0
	for _, stage := range []string{"RCPT TO command", "MAIL FROM command", "DATA command", "EHLO command"} {
		for _, cut := range []bool{false, true} {
			n++
			q := fmt.Sprintf("C%02dA0B1C2D", n)
			d := gm19Said(q, fmt.Sprintf("c%d@gmail.com", n), "deferred", "4.7.0", gm19MX, ipRate, stage)
			if cut {
				d = d[:len(d)-1]
			}
			msgs = append(msgs, gm19Msg{q, fmt.Sprintf("203.0.113.%d", 100+n), fmt.Sprintf("bob@c%d.example", n), []string{d}})
		}
	}
	dir := t.TempDir()
	mailLog := writeFile(t, dir, "mail.log", gm19Log(msgs), 0o644)
	banLog := filepath.Join(dir, "bans.log")
	out := enforcerOnce(t, nil, append(enforcerArgs(mailLog, filepath.Join(dir, "state"), filepath.Join(dir, "sender_access"),
		writeFile(t, dir, "welcomelist", "127.0.0.0/8\n", 0o644), banLog, "127.0.0.1:9"), "--upstream", `google\.com`)...)
	if strings.Contains(out, " ban ") {
		t.Errorf("a refusal before the content banned its client:\n%s", out)
	}
	compWantBans(t, banLog)
	// The cut lines are said to be cut, naming their clients.
	for _, q := range []string{"C02", "C04", "C06", "C08"} {
		compWantLines(t, out, []string{`^\S+ report queue=` + q + `A0B1C2D client=203\.0\.113\.1\d\d .*the syslog daemon cut it`})
	}
}
