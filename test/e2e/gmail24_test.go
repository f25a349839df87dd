package e2e

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// Outside checker gmail24: every reply of gmail-replies.md, answered
// verbatim by a fake Gmail in its multi-line form and in variants (lines
// folded at other points, trailing whitespace, the older or newer wording,
// other bracketed numbers, lower case), relayed by the built binary, and
// the relay's action checked: who is banned, which domain is blocked, the
// encapsulated copy (DKIM-signed, the original attached byte for byte),
// the mail kept for pace and alert.

// gmail24Reply is one reply of gmail-replies.md: {relay} is the relay's
// address as Gmail saw it, {domain} the envelope sender's domain.
type gmail24Reply struct {
	verdict, code, enh, text string
}

var gmail24Replies = []gmail24Reply{
	{"ban", "550", "5.7.1", "[{relay} 12] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked. Please visit https://support.google.com/mail/?p=UnsolicitedMessageError for more information."},
	{"ban", "550", "5.7.1", "[{relay} 19] Gmail has detected that this message is likely unsolicited email. To reduce the amount of spam sent to Gmail, this message has been blocked. For more information, go to https://support.google.com/mail/?p=UnsolicitedMessageError"},
	{"ban", "421", "4.7.0", "[{relay} 15] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. Please visit https://support.google.com/mail/?p=UnsolicitedRateLimitError to review our Bulk Email Senders Guidelines."},
	{"ban", "550", "5.7.1", "[{relay} 1] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been blocked. Please visit https://support.google.com/mail/?p=UnsolicitedIPError"},
	{"ban", "550", "5.7.28", "[{relay} 1] There is an unusual rate of unsolicited email originating from your IP address. To protect our users from spam, mail sent from your IP address has been blocked. To review our bulk email senders guidelines, go to https://support.google.com/mail/?p=UnsolicitedIPError"},
	{"ban", "421", "4.7.28", "Gmail has detected an unusual rate of unsolicited mail originating from your IP Netblock [{relay} 34]. To protect our users from spam, mail sent from your IP Netblock has been temporarily rate limited."},
	{"ban", "421", "4.7.28", "Gmail has detected an unusual rate of unsolicited email containing one of your URL domains. To protect our users from spam, email containing your URL domain has been temporarily rate limited."},
	{"ban", "421", "4.7.28", "Gmail has detected this sender exceeded the quota for sending messages that have the same Message-ID:. To best protect our users, the message has been temporarily rate limited."},
	{"ban", "421", "4.7.0", "[{relay} 15] Our system has detected that this message is suspicious due to the very low reputation of the sending IP address. To best protect our users from spam, the message has been blocked."},
	{"ban", "421", "4.7.0", "[{relay} 15] This message is suspicious due to the nature of the content or the links within. To best protect our users from spam, the message has been blocked."},
	{"ban", "421", "4.7.0", "[{relay} 15] Gmail has detected that this message is suspicious due to the nature of the content or the links within. To best protect our users from spam, the message has been blocked."},
	{"ban", "552", "5.7.0", "This message was blocked because its content presents a potential security issue. To review our message content and attachment content guidelines, go to https://support.google.com/mail/?p=BlockedMessage"},
	{"block-domain", "550", "5.7.1", "[{relay} 12] Our system has detected that this message is likely suspicious due to the very low reputation of the sending domain. To best protect our users from spam, the message has been blocked."},
	{"block-domain", "421", "4.7.0", "[{relay} 12] This message is likely suspicious due to the very low reputation of the sending domain. To best protect our users from spam, the message has been blocked."},
	{"block-domain", "421", "4.7.28", "Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain [{domain} 30]. To protect our users from spam, mail sent from your SPF domain has been temporarily rate limited."},
	{"block-domain", "421", "4.7.28", "Gmail has detected an unusual rate of unsolicited email originating from your DKIM domain [{domain} 30]. To protect our users from spam, mail sent from your DKIM domain has been temporarily rate limited."},
	{"block-domain", "451", "4.7.24", "The SPF record of the sending domain has one or more suspicious entries. To protect our users from spam, email sent from your IP address has been temporarily rate limited."},
	{"block-domain", "550", "5.7.24", "The SPF record of the sending domain has one or more suspicious entries. To protect our users from spam, the message has been blocked."},
	{"encapsulate", "550", "5.7.26", "Unauthenticated email from {domain} is not accepted due to domain's DMARC policy. Please contact the administrator of {domain} domain if this was a legitimate mail. To learn about the DMARC initiative, go to https://support.google.com/mail/?p=DmarcRejection"},
	{"encapsulate", "550", "5.7.26", "The MAIL FROM domain [{domain}] has an SPF record with a hard fail policy (-all) but it fails to pass SPF checks with the ip: [{relay}]. To best protect our users from spam and phishing, the message has been blocked."},
	{"encapsulate", "421", "4.7.26", "This email has been rate limited because it is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM. Authentication results: DKIM = did not pass SPF [{domain}] with ip: [{relay}] = did not pass"},
	{"encapsulate", "550", "5.7.26", "This email has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM."},
	{"encapsulate", "421", "4.7.27", "Your email has been rate limited because SPF authentication didn't pass for this message. Gmail requires all bulk email senders to authenticate their email with SPF."},
	{"encapsulate", "550", "5.7.27", "This message was blocked because it didn't pass SPF authentication."},
	{"encapsulate", "421", "4.7.30", "Your email has been rate limited because DKIM authentication didn't pass for this message. Gmail requires all email bulk senders to authenticate their email with DKIM."},
	{"encapsulate", "550", "5.7.30", "This message was blocked because it didn't pass DKIM authentication."},
	{"encapsulate", "421", "4.7.40", "Your email has been rate limited because the sending domain doesn't have a DMARC record, or the DMARC record doesn't specify a DMARC policy."},
	{"encapsulate", "550", "5.7.40", "Your message was blocked because the sending domain doesn't have a DMARC record or the DMARC record doesn't specify a DMARC policy."},
	{"encapsulate", "421", "4.7.32", "Your email has been rate limited because the From: header (RFC5322) in this message isn't aligned with either the authenticated SPF or DKIM organizational domain."},
	{"encapsulate", "421", "5.7.32", "Your email has been blocked because the From: header (RFC5322) in this message isn't aligned with either the authenticated SPF or DKIM organizational domain."},
	{"encapsulate", "550", "5.7.1", "This message does not have authentication information or fails to pass authentication checks. To best protect our users from spam, the message has been blocked."},
	{"encapsulate", "421", "4.7.0", "This message does not have authentication information or fails to pass authentication checks. To best protect our users from spam, the message has been blocked."},
	{"none", "451", "4.7.26", "Unauthenticated email from {domain} is not accepted due to domain's DMARC policy, but temporary DNS failures prevent authentication."},
	{"none", "550", "5.1.1", "The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. https://support.google.com/mail/?p=NoSuchUser"},
	{"none", "452", "4.2.2", "The recipient's inbox is out of storage space. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp"},
	{"none", "421", "4.3.0", "Temporary System Problem.  Try again later (10)."},
	{"none", "552", "5.3.4", "Your message exceeded Google's message size limits. Please visit https://support.google.com/mail/?p=MaxSizeError to view our size guidelines."},
	{"pace", "421", "4.7.28", "Gmail has detected an unusual rate of email originating from your IP address {relay}. To protect our users from spam, mail sent from your IP address has been temporarily rate limited."},
	{"pace", "421", "4.7.0", "Try again later, closing connection."},
	{"pace", "421", "4.4.5", "Server busy, try again later."},
	{"pace", "450", "4.2.1", "The user you are trying to contact is receiving mail at a rate that prevents additional messages from being delivered. Please resend your message at a later time."},
	{"pace", "450", "4.2.1", "The user you are trying to contact is receiving mail too quickly. Please resend your message at a later time."},
	{"alert", "421", "4.7.29", "Your email has been rate limited because you're not using a TLS connection. Gmail requires all bulk email senders to use TLS/SSL for SMTP connections."},
	{"alert", "550", "5.7.29", "This message was blocked because it wasn't sent over a TLS connection."},
	{"alert", "550", "5.7.25", "[{relay}] The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not match the sending IP. As a policy, Gmail does not accept messages from IPs with missing PTR records."},
	{"alert", "451", "4.7.23", "The IP address sending this message does not have a PTR record setup."},
	{"alert", "421", "4.7.0", "The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not point to the sending IP."},
	{"alert", "550", "5.4.5", "Daily user sending limit exceeded. For more information on Gmail sending limits go to https://support.google.com/a/answer/166852"},
	{"alert", "550", "5.4.5", "Daily SMTP relay limit exceeded for user. For more information on SMTP relay sending limits please contact your administrator."},
	{"alert", "450", "4.2.1", "Peak SMTP relay limit exceeded for this customer."},
	{"alert", "535", "5.7.8", "Username and Password not accepted. For more information, go to https://support.google.com/mail/?p=BadCredentials"},
	{"alert", "534", "5.7.9", "Application-specific password required. For more information, go to https://support.google.com/mail/?p=InvalidSecondFactor"},
	{"alert", "534", "5.7.14", "Please log in through your web browser and then try again. Learn more at https://support.google.com/mail/answer/78754"},
	{"alert", "454", "4.7.0", "Too many login attempts, please try again later."},
	{"none", "550", "5.7.1", "Messages missing a valid Message-ID: header are not accepted. For more information, go to https://support.google.com/mail/?p=RfcMessageNonCompliant"},
	{"none", "550", "5.7.1", "Messages missing a valid address in the From: header, or having no From: header, are not accepted."},
	{"none", "550", "5.7.1", "This message is not RFC 5322 compliant because it has multiple addresses in the From: header."},
	{"none", "550", "5.7.1", "This message is not RFC 5322 compliant because it has duplicate headers."},
	{"none", "550", "5.7.1", "Encoded-word syntax is not permitted in message header Subject."},
	{"none", "554", "5.6.0", "Email message is malformed. Not accepting."},
}

// gmail24Variant makes variant v of a reply's text, folded into Gmail's
// multi-line form.
func gmail24Variant(r gmail24Reply, v int, relayIP, domain string) string {
	text := strings.ReplaceAll(strings.ReplaceAll(r.text, "{relay}", relayIP), "{domain}", domain)
	width, trail := 62, ""
	switch v % 6 {
	case 1:
		width = 33
	case 2:
		width, trail = 75, "  \t"
	case 3:
		width = 50
		if regexp.MustCompile(`\bemail\b`).MatchString(text) {
			text = regexp.MustCompile(`\bemail\b`).ReplaceAllString(text, "mail")
		} else {
			text = regexp.MustCompile(`\bmail\b`).ReplaceAllString(text, "email")
		}
	case 4:
		width = 45
		text = regexp.MustCompile(`(\[\S+ )(\d+)\]`).ReplaceAllStringFunc(text, func(s string) string {
			return regexp.MustCompile(`\d+\]$`).ReplaceAllString(s, "7]")
		})
	case 5:
		width = 58
		text = strings.ToLower(text)
	}
	lines := strings.Split(foldReply(r.code, r.enh, text, width), "\r\n")
	for i := range lines {
		lines[i] += trail
	}
	return strings.Join(lines, "\r\n")
}

// TestGmail24RelayEveryReply: each reply, twice in different variants,
// to a message of its own client and sender domain, in store-and-forward
// mode with [dkim] set.
func TestGmail24RelayEveryReply(t *testing.T) {
	t.Parallel()
	keyFile, record := ed25519KeyFile(t, t.TempDir())
	gmail := newFakeGmail(t)
	cfg := "[enforce]\nban_delay = \"0s\"\n[delivery]\nminimal_backoff_time = \"60s\"\nmaximal_backoff_time = \"60s\"\n" +
		"pace_suspend = \"1ms\"\npace_max_suspend = \"1ms\"\npace_delay = \"1ms\"\npace_max_delay = \"1ms\"\nquota_window = \"1ms\"\n" +
		"[dkim]\ndomain = \"" + relayDomain + "\"\nselector = \"rk\"\nkey = \"" + keyFile + "\"\n"
	r := startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg})
	type sent struct {
		c                  gmail24Reply
		v                  int
		ip, from, to, dom  string
		id, reply, subject string
	}
	var all []sent
	for i, c := range gmail24Replies {
		for _, v := range []int{i, i + 3} {
			n := len(all)
			s := sent{c: c, v: v % 6, ip: fmt.Sprintf("127.24.%d.%d", n/200, 10+n%200), dom: fmt.Sprintf("g24c%d.example", n),
				to: fmt.Sprintf("g24r%d@gmail.test", n), subject: fmt.Sprintf("gmail24 case %d", n)}
			s.from = "sender@" + s.dom
			s.reply = gmail24Variant(c, v, "192.0.2.25", s.dom)
			gmail.answer(s.to, stData, s.reply)
			tx, err := sendFrom(r.addr(), s.ip, s.from, []string{s.to}, gmailMessage(s.from, s.subject))
			if err != nil || tx.Final.code() != 250 {
				t.Fatalf("case %d: send: %v; %+v", n, err, tx)
			}
			s.id = queuedID(t, tx.Final)
			r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == s.id })
			all = append(all, s)
		}
	}
	waitFor(10*time.Second, func() bool {
		for _, s := range all {
			if st := msgState(r.spool, s.id); st == "claimed" || st == "new" {
				return false
			}
			if s.c.verdict == "encapsulate" && len(gmail.copiesTo(s.to)) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(500 * time.Millisecond)
	bans, _ := os.ReadFile(enforceFile(r, "bans"))
	access, _ := os.ReadFile(enforceFile(r, "sender_access"))
	banned, blocked := map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(string(bans), "\n") {
		if f := strings.Fields(l); len(f) > 0 && !strings.HasPrefix(l, "#") {
			banned[f[0]] = true
		}
	}
	sc := bufio.NewScanner(strings.NewReader(string(access)))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 && !strings.HasPrefix(f[0], "#") {
			blocked[strings.ToLower(f[0])] = true
		}
	}
	bad := 0
	for n, s := range all {
		var problems []string
		es := enforceEvents(r, s.ip)
		act := actionOf(es)
		st := msgState(r.spool, s.id)
		want := s.c.verdict
		switch want {
		case "ban", "block-domain":
			if p := gmail24Sanctioned(want, act, s.ip, s.dom, banned, blocked); p != "" {
				problems = append(problems, p)
			}
		case "encapsulate":
			cps := gmail.copiesTo(s.to)
			refused := gmail.txs(func(tx hTx) bool { return tx.MailFrom == s.from })
			switch {
			case act != "encapsulate" || len(cps) != 1 || len(refused) != 1:
				problems = append(problems, fmt.Sprintf("action %s, %d copies, %d refused", act, len(cps), len(refused)))
			default:
				checkCopy(t, cps[0], refused[0], s.to, `"Alice Example" <`+s.from+`>`, s.subject)
				lookup := func(name string) ([]string, error) {
					if name != "rk._domainkey."+relayDomain {
						return nil, fmt.Errorf("no TXT record for %s", name)
					}
					return []string{record}, nil
				}
				vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(cps[0].Data), &msgdkim.VerifyOptions{LookupTXT: lookup})
				if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != relayDomain {
					problems = append(problems, fmt.Sprintf("copy's DKIM signature: %+v, %v", vs, err))
				}
			}
		case "pace", "alert", "none":
			// Nobody sanctioned; pace and alert keep the mail (alerts
			// are told once per rule an hour: the event may be missing).
			for _, e := range es {
				if e.Event != "admin-alert" {
					problems = append(problems, "event "+e.Event)
				}
			}
			if want != "none" && st != "ready" {
				problems = append(problems, "message "+st+", not kept")
			}
		}
		if banned[s.ip] && want != "ban" {
			problems = append(problems, "client banned")
		}
		if blocked[s.dom] && want != "block-domain" {
			problems = append(problems, "domain blocked")
		}
		if len(problems) > 0 {
			bad++
			t.Errorf("case %d (variant %d, want %s): %s\nreply: %q\nevents: %v", n, s.v, want, strings.Join(problems, "; "), s.reply, fieldsOf(es))
		}
	}
	for ip := range banned {
		if !strings.HasPrefix(ip, "127.24.") {
			t.Errorf("banned %s, not a client", ip)
		}
	}
	for d := range blocked {
		if !strings.HasPrefix(d, "g24c") {
			t.Errorf("blocked %s, not a sender's domain", d)
		}
	}
	// The administrator is told of every alert rule once (an hour).
	told := map[string]bool{}
	for _, e := range r.events("admin-alert") {
		told[e.Get("rule")] = true
	}
	for _, s := range all {
		u, err := enforce.ParseReply(s.reply)
		if v := enforce.DefaultRules().Classify(u); err == nil && v.Action == enforce.Alert && !told[v.Rule] {
			t.Errorf("alert rule %s: no admin-alert line (reply %q)", v.Rule, s.reply)
		}
	}
	// The sanctions hold: a banned client is refused, a blocked domain is
	// refused at MAIL FROM (its subdomains too), from any client.
	for _, s := range all {
		switch {
		case s.c.verdict == "ban" && banned[s.ip]:
			if _, greet, err := dialFrom(r.addr(), s.ip); err == nil && greet.code() != 554 {
				t.Errorf("banned client %s greeted %q; want 554", s.ip, greet)
			}
		case s.c.verdict == "block-domain" && blocked[s.dom]:
			c := mustDial(t, r.addr(), "127.26.0.1")
			mustCmd(t, c, "250", "EHLO other.e2e.test")
			for _, from := range []string{"x@" + s.dom, "x@news." + s.dom} {
				if rep, err := c.cmd("MAIL FROM:<%s>", from); err != nil || rep.code()/100 != 5 {
					t.Errorf("MAIL FROM:<%s> of a blocked domain: %q, %v; want a refusal", from, rep, err)
				}
				c.cmd("RSET")
			}
		}
	}
	t.Logf("%d replies checked, %d acted on wrongly", len(all), bad)
}

// TestGmail24ProxyEveryReply: the same replies to a proxy's clients: the
// action is the store-and-forward one, and the client hears a refusal for
// a sanction, a success for a copy sent on, a temporary refusal for pace
// and alert (the mail is to be tried again), Gmail's own code otherwise.
func TestGmail24ProxyEveryReply(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	// A pace reply pauses the proxy (TestGm27ProxyHonoursPace): to no
	// time at all here, so that it does not hold up the cases after it.
	r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: true, config: "[enforce]\nban_delay = \"0s\"\n" +
		"[delivery]\npace_suspend = \"1ns\"\npace_max_suspend = \"1ns\"\nquota_window = \"1ns\"\n"})
	bad, n := 0, 0
	for i, c := range gmail24Replies {
		for _, v := range []int{i + 1, i + 4} {
			ip := fmt.Sprintf("127.25.%d.%d", n/200, 10+n%200)
			dom := fmt.Sprintf("g24p%d.example", n)
			from, to := "sender@"+dom, fmt.Sprintf("g24p%d@gmail.test", n)
			gmail.answer(to, stData, gmail24Variant(c, v, "192.0.2.25", dom))
			tx, err := sendFrom(r.addr(), ip, from, []string{to}, gmailMessage(from, fmt.Sprintf("proxy case %d", n)))
			if err != nil {
				t.Fatalf("case %d: %v", n, err)
			}
			heard := heardReply(tx).code()
			gcode := 0
			fmt.Sscan(c.code, &gcode)
			var ok bool
			switch c.verdict {
			case "ban", "block-domain":
				ok = heard/100 == 5
			case "encapsulate":
				ok = heard == 250
			case "pace", "alert":
				ok = heard/100 == 4
			default:
				ok = heard == gcode
			}
			act := ""
			if c.verdict == "ban" || c.verdict == "block-domain" || c.verdict == "encapsulate" {
				e := r.waitEvent("", 5*time.Second, func(e *maillog.Entry) bool {
					return e.Get("client") == ip && (e.Event == "ban" || e.Event == "block" || e.Event == "encapsulate" || e.Event == "report")
				})
				act = e.Event
				if act == "block" {
					act = "block-domain"
				}
				ok = ok && act == c.verdict
			}
			if !ok {
				bad++
				t.Errorf("case %d (%s %s %s, variant %d): client heard %q, action %q", n, c.verdict, c.code, c.enh, v%6, heardReply(tx), act)
			}
			n++
		}
	}
	time.Sleep(300 * time.Millisecond)
	for _, e := range r.events("") {
		if (e.Event == "ban" || e.Event == "block") && !strings.HasPrefix(e.Get("client"), "127.25.") {
			t.Errorf("%s %v: not a client of the test", e.Event, e.Fields)
		}
	}
	t.Logf("%d replies checked through the proxy, %d wrong", n, bad)
}

// ed25519KeyFile writes a new Ed25519 private key (PKCS #8, PEM) for
// [dkim] key to dir and returns its path and its DNS record's text.
func ed25519KeyFile(t *testing.T, dir string) (path, record string) {
	t.Helper()
	pub, key, _ := ed25519.GenerateKey(rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(key)
	return writeFile(t, dir, "dkim.key", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), 0o600),
		"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)
}

// gmail24Sanctioned says what is wrong with a ban or a block-domain
// verdict's outcome: act is the action seen, banned and blocked what the
// ban list and sender_access hold; "" if all is right.
func gmail24Sanctioned(verdict, act, ip, dom string, banned, blocked map[string]bool) string {
	if act != verdict || verdict == "ban" && !banned[ip] || verdict == "block-domain" && !blocked[dom] {
		return fmt.Sprintf("action %q, banned %v, blocked %v", act, banned[ip], blocked[dom])
	}
	return ""
}

// TestGmail24BeforeContentKept: Gmail's "unusual rate of unsolicited mail
// originating from your IP address ... temporarily rate limited" said at
// the greeting, to EHLO, to MAIL FROM, to RCPT TO or to the DATA command is
// about the relay's address: nobody is banned, and the mail is kept (4xx)
// and delivered once Gmail takes it, never bounced.
func TestGmail24BeforeContentKept(t *testing.T) {
	t.Parallel()
	for _, stage := range []harness.Stage{harness.StageConnect, harness.StageHelo, harness.StageMail, harness.StageRcpt, harness.StageData} {
		t.Run(stage.String(), func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			refused := 0
			gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", Decide: func(st harness.Stage, tx harness.Transaction, arg string) harness.Response {
				mu.Lock()
				defer mu.Unlock()
				if st != stage || refused >= 2 || tx.MailFrom == "" && st > harness.StageMail {
					return harness.Response{}
				}
				refused++
				return harness.Response{Reply: strings.ReplaceAll(gmailIPRateLimited, "{id}", fmt.Sprintf("b%dsi%d", refused, refused))}
			}})
			cfg := "[enforce]\nban_delay = \"0s\"\n[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"1s\"\n" +
				"pace_suspend = \"1s\"\npace_max_suspend = \"1s\"\npace_delay = \"1ms\"\npace_max_delay = \"1ms\"\n"
			r := startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg})
			tx, err := sendFrom(r.addr(), "127.27.0.10", "alice@g24k.example", []string{"bob@gmail.test"}, gmailMessage("alice@g24k.example", "kept"))
			if err != nil || tx.Final.code() != 250 {
				t.Fatalf("send: %v %+v", err, tx)
			}
			id := queuedID(t, tx.Final)
			if !waitFor(20*time.Second, func() bool {
				return gmail24Accepted(gmail, "alice@g24k.example") == 1 || msgState(r.spool, id) == "failed"
			}) {
				t.Fatalf("after 20s: message %s %s, %d refusals", id, msgState(r.spool, id), refused)
			}
			if s := msgState(r.spool, id); s == "failed" || gmail24Accepted(gmail, "") > 0 {
				t.Errorf("message %s %s, %d notices: want it kept and delivered, no bounce", id, s, gmail24Accepted(gmail, ""))
			}
			if es := enforceEvents(r, "127.27.0.10"); len(es) != 0 {
				t.Errorf("events about the client: %v; want none", fieldsOf(es))
			}
		})
	}
}

// gmail24Accepted counts the transactions from sender that f accepted.
func gmail24Accepted(f *harness.FakeSMTP, sender string) int {
	n := 0
	for _, tx := range f.Transactions() {
		if tx.Accepted() && tx.MailFrom == sender {
			n++
		}
	}
	return n
}
