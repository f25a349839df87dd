package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevEnfClientPortLogging: with smtpd_client_port_logging = yes,
// Postfix logs every client as "client=NAME[IP]:PORT". The spammer is
// still banned, and never taken for local submission (whose refusal is
// encapsulated: re-sent as the relay itself).
func TestRevEnfClientPortLogging(t *testing.T) {
	t.Parallel()
	pf, dir, banLog, access, welcome := revEnfSetup(t, "127.0.0.0/8", "smtpd_client_port_logging = yes")
	hostileSend(t, pf.Addr(), "203.0.113.81", "mx.spammer.test", []string{
		"MAIL FROM:<bob@spammer.test>", "RCPT TO:<spam@gmail.test>"}, "")
	compWaitLog(t, pf, `to=<spam@gmail\.test>, .*status=bounced`, 30*time.Second)
	log := pf.MailLog()
	t.Logf("Postfix's log:\n%s", log)
	if !strings.Contains(log, "client=mx.spammer.test[203.0.113.81]:") {
		t.Fatalf("Postfix's log has no client=NAME[IP]:PORT line")
	}
	out := review11Enforcer(t, pf, dir, access, welcome, banLog, "--trusted-upstream", "127.0.0.1")
	compWantLines(t, out, []string{`^\S+ ban client=203\.0\.113\.81 .*rule=gmail-unsolicited`})
	if strings.Contains(out, "submitted locally") {
		t.Errorf("the spammer's refusal was taken for local submission:\n%s", out)
	}
	compWantBans(t, banLog, "203.0.113.81")
}

// TestRevEnfCompanionLocalSubmission: a real Postfix's local submission
// (sendmail, so pickup) is encapsulated, its sender never blocked; a
// message whose first line the enforcer never saw (it starts at the end
// of the log) has an unknown client, and its spam is reported, not
// re-sent as the relay itself; a spammer after it is still banned.
func TestRevEnfCompanionLocalSubmission(t *testing.T) {
	t.Parallel()
	pf, dir, banLog, access, welcome := revEnfSetup(t, "192.0.2.1")
	cmd := exec.Command("/usr/sbin/sendmail", "-C", pf.ConfigDir(), "-f", "alice@local.test", "spam@gmail.test")
	cmd.Stdin = strings.NewReader("Subject: local\nMessage-Id: <local-1@local.test>\n\nhello\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sendmail: %v: %s", err, out)
	}
	compWaitLog(t, pf, `to=<spam@gmail\.test>, .*status=bounced`, 30*time.Second)
	if log := pf.MailLog(); !strings.Contains(log, "postfix/pickup[") || !strings.Contains(log, " uid=") {
		t.Fatalf("no pickup line in Postfix's log:\n%s", log)
	}
	out := review11Enforcer(t, pf, dir, access, welcome, banLog, "--trusted-upstream", "127.0.0.1")
	compWantLines(t, out, []string{`^\S+ report .*from=<alice@local\.test> .*why="no backup mailbox`})
	if strings.Contains(out, "the client is unknown") || strings.Contains(out, " ban ") {
		t.Errorf("local submission was not taken for local:\n%s", out)
	}

	// The enforcer now starts at the end of a log whose client= line it
	// never read; the refusal comes after.
	state2 := filepath.Join(dir, "state2")
	hostileSend(t, pf.Addr(), "203.0.113.82", "mx.spammer2.test", []string{
		"MAIL FROM:<bob@spammer2.test>", "RCPT TO:<spam@gmail.test>"}, "")
	compWaitCount(t, pf, `to=<spam@gmail\.test>, .*status=bounced`, 2, 30*time.Second)
	lines := strings.SplitAfter(pf.MailLog(), "\n")
	var cut []string
	for _, l := range lines {
		if !strings.Contains(l, "client=mx.spammer2.test[") {
			cut = append(cut, l)
		}
	}
	logCopy := filepath.Join(dir, "maillog.cut")
	if err := os.WriteFile(logCopy, []byte(strings.Join(cut, "")), 0o644); err != nil {
		t.Fatal(err)
	}
	out2 := enforcerOnce(t, nil, append(enforcerArgs(logCopy, state2, access, welcome, banLog, pf.Addr()),
		"--trusted-upstream", "127.0.0.1", "-f", filepath.Join(dir, "no-backup"))...)
	compWantLines(t, out2, []string{`^\S+ report .*from=<bob@spammer2\.test> .*why="the client is unknown"`})
	if strings.Contains(out2, "encapsulate") {
		t.Errorf("the spam of an unknown client was to be encapsulated:\n%s", out2)
	}
}

// revEnfSetup starts a private Postfix relaying gmail.test to a fake Gmail
// (hostileGmailDecide), with the main.cf lines given, and writes a
// welcomelist of welcome in a temporary directory; it returns Postfix,
// the directory and the paths of the ban log, sender_access and the
// welcomelist.
func revEnfSetup(t *testing.T, welcome string, mainCF ...string) (pf *harness.Postfix, dir, banLog, access, wl string) {
	t.Helper()
	dir = t.TempDir()
	pf, _ = hostileGmailPostfix(t, mainCF...)
	banLog, access, wl = filepath.Join(dir, "bans.log"), filepath.Join(dir, "sender_access"), filepath.Join(dir, "welcomelist")
	if err := os.WriteFile(wl, []byte(welcome+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return pf, dir, banLog, access, wl
}

// TestRevEnfSRSDomainNeverBlocked: the relay rewrites forwarded senders
// into its SRS domain ([srs] domain, not under --domain), so Gmail names
// that domain as the SPF domain of a spammer's mail. It is the relay's
// own, never blocked: the refusal is reported.
func TestRevEnfSRSDomainNeverBlocked(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := writeFile(t, dir, "srs.secret", "rev-enf-secret\n", 0o600)
	gmail := newFakeGmail(t)
	gmail.answer("r1@gmail.test", stData, gmailReply("421", "4.7.28",
		"Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain [bounces.srs-own.test 30]. To protect our users from spam, mail sent from your SPF domain has been temporarily rate limited."))
	cfg := "[enforce]\nban_delay = \"0s\"\n[srs]\nsecret_file = \"" + secret + "\"\ndomain = \"bounces.srs-own.test\"\n"
	r := startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg})
	tx, err := sendFrom(r.addr(), "127.0.3.10", "s1@sender.example", []string{"r1@gmail.test"}, gmailMessage("s1@sender.example", "srs own"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v; %+v", err, tx)
	}
	e := r.waitEvent("", 15*time.Second, func(e *maillog.Entry) bool {
		return e.Get("client") == "127.0.3.10" && (e.Event == "block" || e.Event == "report")
	})
	if e.Event != "report" || e.Get("domain") != "" {
		t.Errorf("the relay's SRS domain named by Gmail: %s %v; want a report, no block", e.Event, e.Fields)
	}
	if tx := gmail.txs(func(tx harness.Transaction) bool { return len(tx.Rcpts) > 0 }); len(tx) == 0 || !strings.HasSuffix(tx[0].MailFrom, "@bounces.srs-own.test") {
		t.Errorf("Gmail saw %+v; want the sender rewritten into bounces.srs-own.test", tx)
	}
}

// TestRevEnfOwnSendersNeverBlocked: the relay's encapsulated copies and
// reports come from enforce.relay_address and are signed as [dkim]
// domain; Gmail may name either as the domain at fault. Neither is
// blocked when it is not under --domain: the refusal is reported.
func TestRevEnfOwnSendersNeverBlocked(t *testing.T) {
	t.Parallel()
	keyFile, _ := ed25519KeyFile(t, t.TempDir())
	gmail := newFakeGmail(t)
	gmail.answer("r1@gmail.test", stData, gmailReply("421", "4.7.28",
		"Gmail has detected an unusual rate of unsolicited mail originating from your DKIM domain [sign.dkim-own.test 30]. To protect our users from spam, mail sent from your DKIM domain has been temporarily rate limited."))
	gmail.answer("r2@gmail.test", stData, gmailReply("421", "4.7.28",
		"Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain [notices.own.test 30]. To protect our users from spam, mail sent from your SPF domain has been temporarily rate limited."))
	cfg := "[enforce]\nban_delay = \"0s\"\nrelay_address = \"enforcer@notices.own.test\"\n[dkim]\ndomain = \"sign.dkim-own.test\"\nselector = \"rk\"\nkey = \"" + keyFile + "\"\n"
	r := startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg})
	for i, ip := range []string{"127.0.3.21", "127.0.3.22"} {
		to := fmt.Sprintf("r%d@gmail.test", i+1)
		from := fmt.Sprintf("s%d@sender.example", i+1)
		if tx, err := sendFrom(r.addr(), ip, from, []string{to}, gmailMessage(from, "own "+to)); err != nil || tx.Final.code() != 250 {
			t.Fatalf("send: %v; %+v", err, tx)
		}
		e := r.waitEvent("", 15*time.Second, func(e *maillog.Entry) bool {
			return e.Get("client") == ip && (e.Event == "block" || e.Event == "report")
		})
		if e.Event != "report" || e.Get("domain") != "" {
			t.Errorf("%s: the relay's own domain named by Gmail: %s %v; want a report, no block", to, e.Event, e.Fields)
		}
	}
}

// TestRevEnfCompanionFreemailNeverBlocked: a spammer relaying through
// Postfix with a forged freemail sender gets a domain-reputation refusal;
// postfix-enforcer, like the relay (never_block's defaults), never blocks
// the freemail domain for all its users: the refusal is reported, and
// the spammer's own domain is still blocked.
func TestRevEnfCompanionFreemailNeverBlocked(t *testing.T) {
	t.Parallel()
	pf, dir, banLog, access, welcome := revEnfSetup(t, "192.0.2.1")
	hostileSend(t, pf.Addr(), "203.0.113.83", "mx.forger.test", []string{
		"MAIL FROM:<bob@outlook.com>", "RCPT TO:<domain@gmail.test>"}, "")
	hostileSend(t, pf.Addr(), "203.0.113.84", "mx.spammer3.test", []string{
		"MAIL FROM:<bob@spammer3.test>", "RCPT TO:<domain2@gmail.test>"}, "")
	compWaitCount(t, pf, `to=<domain2?@gmail\.test>, .*status=bounced`, 2, 30*time.Second)
	out := review11Enforcer(t, pf, dir, access, welcome, banLog, "--trusted-upstream", "127.0.0.1")
	compWantLines(t, out, []string{
		`^\S+ report .*client=203\.0\.113\.83 .*why="the domain outlook\.com is never blocked"`,
		`^\S+ block-domain domain=spammer3\.test `,
	})
	if b, _ := os.ReadFile(access); strings.Contains(string(b), "outlook") {
		t.Errorf("sender_access blocks outlook.com:\n%s", b)
	}
}

// Loopback aliases of TestRevEnfByMXWorkspace's MX hosts, on port 25.
const (
	mxWorkspace = "127.0.71.51" // aspmx.l.google.com, for workspace.test
	mxImpostor  = "127.0.71.52" // mx.impostor.test
)

// TestRevEnfByMXWorkspace: delivering by MX, the upstream is named by
// its MX host, as Postfix logs relay=NAME[IP]: a Google Workspace domain
// (workspace.test, whose MX is aspmx.l.google.com) is Gmail, and Gmail's
// spam refusal bans the client without the administrator listing the
// address; a domain of an impostor answering in Gmail's words is still
// only reported.
func TestRevEnfByMXWorkspace(t *testing.T) {
	t.Parallel()
	gmail, impostor := newFakeGmail(t), newFakeGmail(t)
	gmail.answer("spam@workspace.test", stData, gmailUnsolicited)
	impostor.answer("victim@impostor.test", stData, gmailUnsolicited)
	forwardPort25(t, mxWorkspace, gmail.Addr())
	forwardPort25(t, mxImpostor, impostor.Addr())
	dns := harness.StartDNS(t, fmt.Sprintf("workspace.test. MX 1 aspmx.l.google.com.\naspmx.l.google.com. A %s\n"+
		"impostor.test. MX 1 mx.impostor.test.\nmx.impostor.test. A %s\n", mxWorkspace, mxImpostor))
	dir := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ndefault_transport = \"smtp\"\ndns_server = %q\n[enforce]\nban_delay = \"0s\"\n", dns.Addr()))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--interface", "127.0.0.1",
		"--domain", relayDomain, "--spool-dir", t.TempDir(), "--config", cfg,
		"--welcomelist", writeFile(t, dir, "welcomelist", "# nobody\n192.0.2.1\n", 0o644))
	for _, s := range []struct{ ip, to string }{{"127.0.5.31", "spam@workspace.test"}, {"127.0.5.32", "victim@impostor.test"}} {
		if tx, err := sendFrom(r.addr(), s.ip, "a@spam.example", []string{s.to}, gmailMessage("a@spam.example", "mx "+s.to)); err != nil || tx.Final.code() != 250 {
			t.Fatalf("send: %v %+v", err, tx)
		}
	}
	ban := r.waitEvent("ban", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == "127.0.5.31" })
	if ban.Get("rule") != "gmail-unsolicited" {
		t.Errorf("ban line %v; want rule=gmail-unsolicited", ban.Fields)
	}
	rep := r.waitEvent("report", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == "127.0.5.32" })
	if !strings.Contains(rep.Get("why"), "mx.impostor.test") {
		t.Errorf("impostor's refusal: %v; want a report naming mx.impostor.test as not trusted", rep.Fields)
	}
	if bans := r.events("ban"); len(bans) != 1 {
		t.Errorf("ban lines %v; want the spammer's only", fieldsOf(bans))
	}
}

// TestRevEnfPublicSuffixNeverBlocked: a client that sends as bob@co.uk
// and is refused for its sending domain's reputation must not have the
// relay block co.uk, which (parent domains matching subdomains, as in
// Postfix's access tables) would refuse every sender under it; nor may a
// refusal of a sender of a parent of the relay's own domain block that.
func TestRevEnfPublicSuffixNeverBlocked(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("r1@gmail.test", stData, gmailDomainReputation)
	gmail.answer("r2@gmail.test", stData, gmailDomainReputation)
	r := startEnforcer(t, gmail.Addr(), enforceOpts{extra: []string{"--domain", "mail.own.example"}})
	for _, s := range []struct{ ip, from, to, why string }{
		{"127.0.3.41", "bob@co.uk", "r1@gmail.test", "public suffix"},
		{"127.0.3.42", "bob@own.example", "r2@gmail.test", "mail.own.example"},
	} {
		if tx, err := sendFrom(r.addr(), s.ip, s.from, []string{s.to}, gmailMessage(s.from, "suffix "+s.to)); err != nil || tx.Final.code() != 250 {
			t.Fatalf("send: %v; %+v", err, tx)
		}
		e := r.waitEvent("", 15*time.Second, func(e *maillog.Entry) bool {
			return e.Get("client") == s.ip && (e.Event == "block" || e.Event == "report")
		})
		if e.Event != "report" {
			t.Errorf("%s refused for its domain: %s %v; want a report", s.from, e.Event, e.Fields)
		}
		// The mail log's why ("domain not blocked: ...") and the diagnostics say why.
		if !strings.Contains(r.stderr(), s.why) {
			t.Errorf("%s: no diagnostic saying %q", s.from, s.why)
		}
	}
}
