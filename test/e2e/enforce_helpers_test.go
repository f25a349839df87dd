package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// Helpers shared by the enforce_*_test.go files: Gmail's replies as
// /work/shared/gmail-replies.md gives them, a fake Gmail that answers them
// per recipient, relays with enforcement, and mail-log and spool queries.

// relayDomain is the --domain of every enforcing relay: encapsulated copies
// come from postmaster@relayDomain.
const (
	relayDomain  = "relay.test"
	relayAddress = "postmaster@" + relayDomain
)

// gmailCase is one of Gmail's replies and what relaykeeper must do about it.
type gmailCase struct {
	name string // short, for the table
	// action is the enforcer's action (the mail-log event): ban,
	// block-domain, encapsulate, report or none; proxyAction overrides it
	// in proxy mode when set.
	action, proxyAction string
	rule                string        // the built-in rule that decides ("" for none matched)
	stage               harness.Stage // where Gmail answers: MAIL, RCPT or end of data
	// reply is the reply as Gmail sends it, lines joined by "\r\n";
	// {id} is Gmail's session id (new on every answer), {sender} the
	// envelope sender and {domain} its domain.
	reply string
	// heard is what the client hears in proxy mode: "" the reply
	// unchanged, "554" the reply made permanent (554 5.7.x with the same
	// text on one line), else exactly this line.
	heard string
	// outcome is the original message's fate in store-and-forward mode:
	// delivered, encapsulated, bounced, held or deferred.
	outcome string
}

// gmailReply wraps text into Gmail's multi-line form: "CODE-ENH ..." lines
// of at most about width characters of text, then "CODE ENH ... {id} -
// gsmtp". Single spaces split the text; runs of spaces are kept.
func gmailReply(code, enh, text string) string { return foldReply(code, enh, text, 62) }

// foldReply is gmailReply with the lines' width; enh "" leaves the
// enhanced code out of every line.
func foldReply(code, enh, text string, width int) string {
	words := strings.Split(text+" {id} - gsmtp", " ")
	var lines []string
	cur := ""
	for _, w := range words {
		if cur != "" && len(cur)+1+len(w) > width {
			lines = append(lines, cur)
			cur = w
			continue
		}
		if cur == "" {
			cur = w
		} else {
			cur += " " + w
		}
	}
	lines = append(lines, cur)
	for i := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		if enh != "" {
			lines[i] = enh + " " + lines[i]
		}
		lines[i] = code + sep + lines[i]
	}
	return strings.Join(lines, "\r\n")
}

const (
	stMail = harness.StageMail
	stRcpt = harness.StageRcpt
	stData = harness.StageEndOfData
)

// Gmail's exact multi-line spam refusal, the first text of gmail-replies.md.
const gmailUnsolicited = "550-5.7.1 [127.0.0.1      12] Our system has detected that this message is\r\n" +
	"550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\r\n" +
	"550-5.7.1 this message has been blocked. Please visit\r\n" +
	"550-5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError\r\n" +
	"550 5.7.1 for more information. {id} - gsmtp"

// Texts used by several tests.
var (
	gmailDomainReputation = gmailReply("550", "5.7.1", "[127.0.0.1 12] Our system has detected that this message is likely suspicious due to the very low reputation of the sending domain. To best protect our users from spam, the message has been blocked. Please visit https://support.google.com/mail/answer/188131 for more information.")
	gmailDMARC            = gmailReply("550", "5.7.26", "Unauthenticated email from example.com is not accepted due to domain's DMARC policy. Please contact the administrator of example.com domain if this was a legitimate mail. To learn about the DMARC initiative, go to https://support.google.com/mail/?p=DmarcRejection")
	gmailIPRateLimited    = gmailReply("421", "4.7.0", "[127.0.0.1 15] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. Please visit https://support.google.com/mail/?p=UnsolicitedRateLimitError to review our Bulk Email Senders Guidelines.")
	gmailNoSuchUser       = gmailReply("550", "5.1.1", "The email account that you tried to reach does not exist. Please try double-checking the recipient's email address for typos or unnecessary spaces. ... ?p=NoSuchUser")
	gmailNetblock         = gmailReply("421", "4.7.28", "Gmail has detected an unusual rate of unsolicited mail originating from your IP Netblock [127.0.0.1 34]. ... temporarily rate limited. ...")
	gmailUnknown          = gmailReply("550", "5.7.0", "Mail refused for a reason that no rule of relaykeeper knows about.")
)

// encapsulatedHeard is what a client hears for a refusal that was forwarded
// encapsulated, by the enhanced code the built-in reply filter names.
func encapsulatedHeard(what string) string {
	return "250 2.0.0 Ok: forwarded encapsulated to the recipient (the upstream refused it: " + what + " authentication)"
}

// gmailCases are the replies of gmail-replies.md, in its order, and the
// 250 that ends in gsmtp too.
func gmailCases() []gmailCase {
	return []gmailCase{
		// Ban the submitting client.
		{name: "550 5.7.1 likely unsolicited (Our system)", action: "ban", rule: "gmail-unsolicited", stage: stData,
			reply: gmailUnsolicited, outcome: "bounced"},
		{name: "550 5.7.1 likely unsolicited (Gmail has)", action: "ban", rule: "gmail-unsolicited", stage: stData,
			reply: gmailReply("550", "5.7.1", "[127.0.0.1 19] Gmail has detected that this message is likely unsolicited mail. ..."), outcome: "bounced"},
		{name: "421 4.7.0 unsolicited rate, IP address", action: "ban", rule: "gmail-ip-rate", stage: stData,
			reply: gmailIPRateLimited, heard: "554", outcome: "bounced"},
		{name: "550 5.7.1 unsolicited rate, IP blocked", action: "ban", rule: "gmail-ip-rate", stage: stData,
			reply: gmailReply("550", "5.7.1", "[127.0.0.1 1] Our system has detected an unusual rate of unsolicited mail originating from your IP address. ... has been blocked. ... ?p=UnsolicitedIPError ..."), outcome: "bounced"},
		{name: "421 4.7.28 unsolicited rate, IP Netblock", action: "ban", rule: "gmail-netblock-rate", stage: stData,
			reply: gmailNetblock, heard: "554", outcome: "bounced"},
		{name: "421 4.7.0 low reputation of sending IP", action: "ban", rule: "gmail-ip-reputation", stage: stData,
			reply: gmailReply("421", "4.7.0", "[127.0.0.1 15] Our system has detected that this message is suspicious due to the very low reputation of the sending IP address. To best protect our users from spam, the message has been blocked. ..."), heard: "554", outcome: "bounced"},
		{name: "421 4.7.0 suspicious content/links", action: "ban", rule: "gmail-suspicious-content", stage: stData,
			reply: gmailReply("421", "4.7.0", "[127.0.0.1 15] Gmail has detected that this message is suspicious due to the nature of the content or the links within. ..."), heard: "554", outcome: "bounced"},
		{name: "552 5.7.0 potential security issue", action: "ban", rule: "gmail-security-issue", stage: stData,
			reply: gmailReply("552", "5.7.0", "This message was blocked because its content presents a potential security issue. Please visit https://support.google.com/mail/?p=BlockedMessage to review our message content and attachment content guidelines."), outcome: "bounced"},
		// Block the envelope sender's domain.
		{name: "550 5.7.1 low reputation of domain (Our)", action: "block-domain", rule: "gmail-domain-reputation", stage: stData,
			reply: gmailDomainReputation, outcome: "bounced"},
		{name: "550 5.7.1 low reputation of domain (Gmail)", action: "block-domain", rule: "gmail-domain-reputation", stage: stData,
			reply: gmailReply("550", "5.7.1", "[127.0.0.1 19] Gmail has detected that this message is likely suspicious due to the very low reputation of the sending domain. ..."), outcome: "bounced"},
		{name: "421 4.7.0 low reputation of domain", action: "block-domain", rule: "gmail-domain-reputation", stage: stData,
			reply: gmailReply("421", "4.7.0", "[127.0.0.1 15] Our system has detected that this message is suspicious due to the very low reputation of the sending domain. ..."), heard: "554", outcome: "bounced"},
		{name: "421 4.7.28 unsolicited rate, SPF domain", action: "block-domain", rule: "gmail-spf-domain-rate", stage: stData,
			reply: gmailReply("421", "4.7.28", "Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain [{domain} 30]. ... temporarily rate limited. ..."), heard: "554", outcome: "bounced"},
		// Forward encapsulated.
		{name: "550 5.7.26 DMARC (p=DmarcRejection)", action: "encapsulate", rule: "gmail-dmarc", stage: stData,
			reply: gmailDMARC, heard: encapsulatedHeard("5.7.26"), outcome: "encapsulated"},
		{name: "550 5.7.26 DMARC (answer/81126)", action: "encapsulate", rule: "gmail-dmarc", stage: stData,
			reply: gmailReply("550", "5.7.26", "Unauthenticated email from example.com is not accepted due to domain's DMARC policy. Please visit https://support.google.com/mail/answer/81126#authentication for more information."), heard: encapsulatedHeard("5.7.26"), outcome: "encapsulated"},
		{name: "550 5.7.1 no authentication information", action: "encapsulate", rule: "gmail-authentication", stage: stData,
			reply: gmailReply("550", "5.7.1", "This message does not have authentication information or fails to pass authentication checks. To best protect our users from spam, the message has been blocked. Please visit https://support.google.com/mail/answer/81126#authentication for more information."), heard: encapsulatedHeard("5.7.1"), outcome: "encapsulated"},
		{name: "421 4.7.0 no authentication information", action: "encapsulate", rule: "gmail-authentication", stage: stData,
			reply: gmailReply("421", "4.7.0", "This message does not have authentication information or fails to pass authentication checks. To best protect our users from spam, the message has been blocked. Please visit https://support.google.com/mail/answer/81126#authentication for more information."), heard: encapsulatedHeard("4.7.0"), outcome: "encapsulated"},
		{name: "550 5.7.26 SPF hard fail", action: "encapsulate", rule: "gmail-spf-fail", stage: stData,
			reply: gmailReply("550", "5.7.26", "This message fails to pass SPF checks for an SPF record with a hard fail policy (-all). To best protect our users from spam and phishing, the message has been blocked. ..."), heard: encapsulatedHeard("5.7.26"), outcome: "encapsulated"},
		{name: "550 5.7.26 sender unauthenticated", action: "encapsulate", rule: "gmail-unauthenticated-sender", stage: stData,
			reply: gmailReply("550", "5.7.26", "This mail has been blocked because the sender is unauthenticated. Gmail requires all senders to authenticate with either SPF or DKIM. Authentication results: DKIM = did not pass SPF [example.com] with ip: [127.0.0.1] = did not pass ..."), heard: encapsulatedHeard("5.7.26"), outcome: "encapsulated"},
		// In proxy mode the relay has no message yet when MAIL is refused:
		// nothing to encapsulate, so the refusal is reported and passed on.
		{name: "553 5.1.7 sender not RFC-5321 (MAIL)", action: "encapsulate", proxyAction: "report", rule: "gmail-invalid-sender-address", stage: stMail,
			reply: gmailReply("553", "5.1.7", "The sender address <{sender}> is not a valid RFC-5321 address. For more information, go to https://support.google.com/a/answer/3221692 and review RFC 5321 specifications."), outcome: "encapsulated"},
		// No enforcement.
		{name: "550 5.1.1 no such user (RCPT)", action: "none", rule: "gmail-no-such-user", stage: stRcpt,
			reply: gmailNoSuchUser, outcome: "bounced"},
		{name: "452 4.2.2 over quota (RCPT)", action: "none", rule: "gmail-over-quota", stage: stRcpt,
			reply: gmailReply("452", "4.2.2", "The recipient's inbox is out of storage space. Please direct the recipient to https://support.google.com/mail/?p=OverQuotaTemp"), outcome: "deferred"},
		{name: "450 4.2.1 receiving too quickly (RCPT)", action: "none", rule: "gmail-receiving-too-quickly", stage: stRcpt,
			reply: gmailReply("450", "4.2.1", "The user you are trying to contact is receiving mail too quickly. Please resend your message at a later time. ..."), outcome: "deferred"},
		{name: "421 4.3.0 Temporary System Problem", action: "none", rule: "gmail-temporary-problem", stage: stData,
			reply: "421 4.3.0 Temporary System Problem.  Try again later (10). {id} - gsmtp", outcome: "deferred"},
		{name: "552 5.3.4 message too big", action: "none", rule: "gmail-message-too-big", stage: stData,
			reply: gmailReply("552", "5.3.4", "Your message exceeded Google's message size limits. Please visit https://support.google.com/mail/?p=MaxSizeError to view our size guidelines."), outcome: "bounced"},
		{name: "452 4.5.3 too many recipients", action: "none", rule: "too-many-recipients", stage: stRcpt,
			reply: gmailReply("452", "4.5.3", "Your message has too many recipients. For more information regarding Google's sending limits, visit https://support.google.com/mail/?p=TooManyRecipientsError"), outcome: "deferred"},
		// Gmail's 2024-2026 texts ("email", bulk-sender rules).
		{name: "550 5.7.28 unsolicited email rate, IP", action: "ban", rule: "gmail-ip-rate", stage: stData,
			reply: gmailReply("550", "5.7.28", "[127.0.0.1 1] There is an unusual rate of unsolicited email originating from your IP address. To protect our users from spam, mail sent from your IP address has been blocked. ..."), outcome: "bounced"},
		{name: "421 4.7.28 unsolicited email, URL domains", action: "ban", rule: "gmail-url-domain-rate", stage: stData,
			reply: gmailReply("421", "4.7.28", "Gmail has detected an unusual rate of unsolicited email containing one of your URL domains. To protect our users from spam, email containing your URL domain has been temporarily rate limited. ..."), heard: "554", outcome: "bounced"},
		{name: "451 4.7.24 SPF suspicious entries", action: "block-domain", rule: "gmail-spf-suspicious-entries", stage: stData,
			reply: gmailReply("451", "4.7.24", "The SPF record of the sending domain has one or more suspicious entries. To protect our users from spam, email sent from your IP address has been temporarily rate limited. ..."), heard: "554", outcome: "bounced"},
		{name: "550 5.7.27 SPF did not pass", action: "encapsulate", rule: "gmail-spf-not-passed", stage: stData,
			reply: gmailReply("550", "5.7.27", "This message was blocked because it didn't pass SPF authentication. ..."), heard: encapsulatedHeard("5.7.27"), outcome: "encapsulated"},
		{name: "421 4.7.30 DKIM did not pass", action: "encapsulate", rule: "gmail-dkim-not-passed", stage: stData,
			reply: gmailReply("421", "4.7.30", "Your email has been rate limited because DKIM authentication didn't pass for this message. Gmail requires all email bulk senders to authenticate their email with DKIM. ..."), heard: encapsulatedHeard("4.7.30"), outcome: "encapsulated"},
		{name: "451 4.7.26 DMARC, but DNS failed", action: "none", rule: "gmail-dmarc-dns-temporary", stage: stData,
			reply: gmailReply("451", "4.7.26", "Unauthenticated email from example.com is not accepted due to domain's DMARC policy, but temporary DNS failures prevent authentication. ..."), outcome: "deferred"},
		{name: "421 4.7.28 rate of email (pace)", action: "none", rule: "gmail-rate", stage: stData,
			reply: gmailReply("421", "4.7.28", "Gmail has detected an unusual rate of email originating from your IP address 127.0.0.1. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. ..."), outcome: "deferred"},
		{name: "554 5.6.0 malformed (no sanction)", action: "none", rule: "gmail-malformed", stage: stData,
			reply: gmailReply("554", "5.6.0", "Email message is malformed. Not accepting."), outcome: "bounced"},
		{name: "550 5.7.1 missing Message-ID (no sanction)", action: "none", rule: "gmail-broken-headers", stage: stData,
			reply: gmailReply("550", "5.7.1", "Messages missing a valid Message-ID: header are not accepted. ..."), outcome: "bounced"},
		{name: "550 5.4.5 daily sending limit (alert)", action: "alert", rule: "gmail-sending-limit", stage: stData,
			reply: gmailReply("550", "5.4.5", "Daily user sending limit exceeded. For more information on Gmail sending limits go to https://support.google.com/a/answer/166852"), heard: "451", outcome: "deferred"},
		// The relay's own set-up: alert the administrator, keep the mail
		// (a proxy's client hears a temporary refusal).
		{name: "550 5.7.25 no PTR record", action: "alert", rule: "gmail-no-ptr", stage: stData,
			reply: gmailReply("550", "5.7.25", "[127.0.0.1] The IP address sending this message does not have a PTR record setup, or the corresponding forward DNS entry does not point to the sending IP. As a policy, Gmail does not accept messages from IPs with missing PTR records. ..."), heard: "451", outcome: "deferred"},
		// Report to the administrator.
		{name: "550 5.7.0 unknown to every rule", action: "report", rule: "", stage: stData,
			reply: gmailUnknown, outcome: "bounced"},
		// Not a rejection.
		{name: "250 2.0.0 OK ... gsmtp", action: "none", stage: stData,
			reply: "250 2.0.0 OK  1795310619 {id} - gsmtp", outcome: "delivered"},
	}
}

// fakeGmail is a FakeSMTP answering Gmail's replies: at RCPT or at the end
// of data by recipient, at MAIL by sender. Encapsulated copies (from
// relayAddress) are accepted unless refuseCopy says otherwise; bounces (from
// <>) are always accepted.
type fakeGmail struct {
	*harness.FakeSMTP
	mu     sync.Mutex
	byRcpt map[string]gmailAnswer
	byFrom map[string]string
	copies map[string]string // by recipient: the reply to an encapsulated copy
	sent   map[string][]string
	ids    int
}

type gmailAnswer struct {
	stage harness.Stage
	reply string
}

func newFakeGmail(t *testing.T) *fakeGmail {
	g := &fakeGmail{byRcpt: map[string]gmailAnswer{}, byFrom: map[string]string{}, copies: map[string]string{},
		sent: map[string][]string{}}
	g.FakeSMTP = harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test", Decide: g.decide,
		Capabilities: []string{"SIZE 157286400", "8BITMIME", "ENHANCEDSTATUSCODES", "PIPELINING"}})
	return g
}

// answer makes Gmail answer the recipient (or, at stMail, the sender) with
// reply at stage; "" stops answering it specially.
func (g *fakeGmail) answer(addr string, stage harness.Stage, reply string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	addr = strings.ToLower(addr)
	switch {
	case reply == "" && stage == stMail:
		delete(g.byFrom, addr)
	case reply == "":
		delete(g.byRcpt, addr)
	case stage == stMail:
		g.byFrom[addr] = reply
	default:
		g.byRcpt[addr] = gmailAnswer{stage, reply}
	}
}

// refuseCopy makes Gmail refuse encapsulated copies to rcpt with reply.
func (g *fakeGmail) refuseCopy(rcpt, reply string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.copies[strings.ToLower(rcpt)] = reply
}

// lastSent is the last special reply given for addr (recipient or sender).
func (g *fakeGmail) lastSent(addr string) string {
	g.mu.Lock()
	defer g.mu.Unlock()
	s := g.sent[strings.ToLower(addr)]
	if len(s) == 0 {
		return ""
	}
	return s[len(s)-1]
}

func (g *fakeGmail) give(key, reply, sender string) harness.Response {
	g.ids++
	r := strings.ReplaceAll(reply, "{id}", fmt.Sprintf("e2e%03dsi%06dgsm.%d", g.ids, g.ids*7919%1000000, g.ids%40))
	r = strings.ReplaceAll(r, "{sender}", sender)
	_, dom, _ := strings.Cut(sender, "@")
	r = strings.ReplaceAll(r, "{domain}", dom)
	g.sent[key] = append(g.sent[key], r)
	return harness.Response{Reply: r}
}

func (g *fakeGmail) decide(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
	g.mu.Lock()
	defer g.mu.Unlock()
	if tx.MailFrom == "" && stage != stMail {
		return harness.Response{} // a bounce
	}
	copyTx := strings.EqualFold(tx.MailFrom, relayAddress)
	switch stage {
	case stMail:
		if r, ok := g.byFrom[strings.ToLower(arg)]; ok && arg != "" {
			return g.give(strings.ToLower(arg), r, arg)
		}
	case stRcpt:
		if a, ok := g.byRcpt[strings.ToLower(arg)]; ok && a.stage == stRcpt && !copyTx {
			return g.give(strings.ToLower(arg), a.reply, tx.MailFrom)
		}
	case stData:
		to := tx.To()
		if len(to) != 1 {
			return harness.Response{}
		}
		key := strings.ToLower(to[0])
		if copyTx {
			if r, ok := g.copies[key]; ok {
				return g.give("copy:"+key, r, tx.MailFrom)
			}
			return harness.Response{}
		}
		if a, ok := g.byRcpt[key]; ok && a.stage == stData {
			return g.give(key, a.reply, tx.MailFrom)
		}
	}
	return harness.Response{}
}

// txs returns the transactions that ended, filtered.
func (g *fakeGmail) txs(keep func(harness.Transaction) bool) []harness.Transaction {
	var out []harness.Transaction
	for _, tx := range g.Transactions() {
		if keep(tx) {
			out = append(out, tx)
		}
	}
	return out
}

// copiesTo returns the encapsulated copies Gmail accepted for rcpt.
func (g *fakeGmail) copiesTo(rcpt string) []harness.Transaction {
	return g.txs(func(tx harness.Transaction) bool {
		return tx.Accepted() && strings.EqualFold(tx.MailFrom, relayAddress) && slices.Equal(tx.To(), []string{rcpt})
	})
}

// enforceOpts say how to start an enforcing relay.
type enforceOpts struct {
	proxy bool
	// config is the configuration file's text (TOML); "" means
	// ban_delay = "0s" only.
	config string
	// welcome is the --welcomelist file's text; "" means a file listing
	// only 192.0.2.1, so that no loopback client is welcomelisted.
	welcome string
	extra   []string
}

// startEnforcer starts a relay forwarding to upstream: store-and-forward
// with --forward-on-disconnect, or a proxy. Its spool is r.spool.
func startEnforcer(t *testing.T, upstream string, o enforceOpts) *relay {
	t.Helper()
	dir := t.TempDir()
	cfg := o.config
	if cfg == "" {
		cfg = "[enforce]\nban_delay = \"0s\"\n"
	}
	welcome := o.welcome
	if welcome == "" {
		welcome = "# no loopback client here\n192.0.2.1\n"
	}
	args := []string{"--interface", "127.0.0.1", "--domain", relayDomain, "--spool-dir", t.TempDir(),
		"--config", writeFile(t, dir, "relaykeeper.toml", cfg, 0o644),
		"--welcomelist", writeFile(t, dir, "welcomelist", welcome, 0o644)}
	if o.proxy {
		args = append(args, "--as-proxy", upstream)
	} else {
		args = append(args, "--as-server", "--forward-to", upstream, "--forward-on-disconnect")
	}
	return startRelay(t, "127.0.0.1", append(args, o.extra...)...)
}

// sendFrom sends one message from the local address ip over a connection of
// its own: greeting, EHLO, the transaction, QUIT. A refusal is not an error.
func sendFrom(addr, ip, from string, to []string, body string) (transaction, error) {
	c, greet, err := dialFrom(addr, ip)
	tx := transaction{Greeting: greet}
	if err != nil {
		return tx, err
	}
	defer c.Close()
	if greet.code() != 220 {
		return tx, errRefused
	}
	if tx.Ehlo, err = c.cmd("EHLO client.e2e.test"); err != nil {
		return tx, err
	}
	t2, err := c.send(from, to, body)
	t2.Greeting, t2.Ehlo = tx.Greeting, tx.Ehlo
	c.cmd("QUIT")
	if err == errRefused {
		err = nil
	}
	return t2, err
}

// heardReply is the reply that ended the client's transaction: the first
// refusal, or the reply to the final dot.
func heardReply(tx transaction) reply {
	if tx.Mail.code()/100 != 2 {
		return tx.Mail
	}
	for _, r := range tx.Rcpt {
		if r.code()/100 != 2 {
			return r
		}
	}
	if tx.Data != nil && tx.Data.code() != 354 {
		return tx.Data
	}
	return tx.Final
}

// gmailMessage is a message from the author "Alice Example" <from>.
func gmailMessage(from, subject string) string {
	return "From: \"Alice Example\" <" + from + ">\nTo: <someone@gmail.test>\nSubject: " + subject +
		"\nMessage-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@e2e.test>\nDate: Sun, 22 Nov 2026 10:00:00 +0000\n\nBody of " +
		subject + ".\n.leading dot\n"
}

// replyLines splits a reply as Gmail sent it into its lines.
func replyLines(s string) reply { return reply(strings.Split(s, "\r\n")) }

// flatText is a multi-line reply's text on one line: every line's
// "CODE-ENH " prefix removed, whitespace runs made one space.
func flatText(s string) string {
	var texts []string
	for _, l := range strings.Split(s, "\r\n") {
		if len(l) >= 4 {
			l = l[4:]
			if f := strings.Fields(l); len(f) > 0 && strings.Count(f[0], ".") == 2 && f[0][0] >= '2' && f[0][0] <= '5' {
				l = strings.TrimPrefix(strings.TrimLeft(l, " "), f[0])
			}
		}
		texts = append(texts, l)
	}
	return strings.Join(strings.Fields(strings.Join(texts, " ")), " ")
}

// permanentHeard is the built-in reply filter's 554 for a 4xx 4.7.x spam
// refusal: "554 5.7.x" and the same text, on one line.
func permanentHeard(s string) reply {
	enh := strings.Fields(s[4:])[0]
	return reply{"554 5." + strings.TrimPrefix(enh, "4.") + " " + flatText(s)}
}

// temporaryHeard is what a proxy's client hears when Gmail's 5xx reply
// blames the relay itself (alert): the mail is to be tried again, so 451
// with the enhanced code's class 4, the text on one line.
func temporaryHeard(s string) reply {
	enh := strings.Fields(s[4:])[0]
	return reply{"451 4." + strings.TrimPrefix(enh, "5.") + " " + flatText(s)}
}

// joinedReply is the reply as the relay logs it (Postfix's form): the lines
// joined by spaces, prefixes kept.
func joinedReply(s string) string { return strings.Join(strings.Split(s, "\r\n"), " ") }

// reasonText is firstLine in internal/enforce: whitespace runs made one
// space, cut at 200 bytes with "..." added.
func reasonText(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// enforceEvents are the mail-log lines of the enforcer's events about
// client ip: ban, block, encapsulate, report, spare.
func enforceEvents(r *relay, ip string) []*maillog.Entry {
	var out []*maillog.Entry
	for _, e := range r.events("") {
		switch e.Event {
		case "ban", "block", "encapsulate", "report", "spare", "admin-alert":
			if e.Get("client") == ip {
				out = append(out, e)
			}
		}
	}
	return out
}

// actionOf names the action that events show: "none", or the event
// (block → block-domain) when there is exactly one, else a description.
func actionOf(es []*maillog.Entry) string {
	switch len(es) {
	case 0:
		return "none"
	case 1:
		if es[0].Event == "block" {
			return "block-domain"
		}
		if es[0].Event == "admin-alert" {
			return "alert"
		}
		return es[0].Event
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Event)
	}
	return strings.Join(names, "+")
}

// eventsWith returns the lines of event whose field key is val.
func eventsWith(r *relay, event, key, val string) []*maillog.Entry {
	var out []*maillog.Entry
	for _, e := range r.events(event) {
		if e.Get(key) == val {
			out = append(out, e)
		}
	}
	return out
}

// msgState is a message's state by its envelope file: ready, claimed,
// failed, held, new, or gone.
func msgState(spool, id string) string {
	for _, s := range []struct{ suffix, state string }{{".envelope", "ready"}, {".envelope.busy", "claimed"},
		{".envelope.bad", "failed"}, {".envelope.held", "held"}, {".envelope.new", "new"}} {
		if _, err := os.Stat(filepath.Join(spool, id+s.suffix)); err == nil {
			return s.state
		}
	}
	return "gone"
}

// runCLI runs relaykeeper with args to the end, bounded, and returns its
// exit status, standard output and standard error.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	p := harness.Start(t, harness.Binary(t), args...)
	code, err := p.Wait(20 * time.Second)
	if err != nil {
		t.Fatalf("relaykeeper %q: %v; stderr:\n%s", args, err, p.Stderr())
	}
	return code, p.Stdout(), p.Stderr()
}

// header returns the first value of a header field in a message.
func header(data []byte, name string) string {
	head, _, _ := strings.Cut(string(data), "\r\n\r\n")
	var val string
	found := false
	for _, l := range strings.Split(head, "\r\n") {
		if found && (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) {
			val += " " + strings.TrimSpace(l)
			continue
		}
		if found {
			break
		}
		if k, v, ok := strings.Cut(l, ":"); ok && strings.EqualFold(k, name) {
			found, val = true, strings.TrimSpace(v)
		}
	}
	return val
}

// hTx is a transaction as the fake Gmail saw it.
type hTx = harness.Transaction

// enforceFile is the path of one of the enforcer's files in the relay's
// spool: SPOOL/.enforce/NAME.
func enforceFile(r *relay, name string) string { return filepath.Join(r.spool, ".enforce", name) }
