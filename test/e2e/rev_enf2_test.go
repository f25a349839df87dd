package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevEnf2ForgedOriginalClient: a message goes through the content
// filter (a real Postfix relaying back to the reinject listener) carrying
// the relay's X-Relaykeeper-Original-Client field, and Gmail refuses it as
// spam. The spammer wrote the same field in its own message, naming a
// victim; the relay read the last copy, so the victim was banned and the
// spammer went free. The spammer is banned, the victim is not.
func TestRevEnf2ForgedOriginalClient(t *testing.T) {
	t.Parallel()
	const spammer, victim = "127.0.0.66", "127.0.0.77"
	gmail := newFakeGmail(t)
	gmail.answer("carol@gmail.test", stData, gmailUnsolicited)
	reinject := harness.FreePort(t)
	filter := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: fmt.Sprintf("[127.0.0.1]:%d", reinject)})
	r := startEnforcer(t, gmail.Addr(), enforceOpts{
		config: fmt.Sprintf("[enforce]\nban_delay = \"0s\"\n[routing]\ncontent_filter = %q\n", filter.Addr()),
		extra:  []string{"--interface", fmt.Sprintf("reinject=127.0.0.1:%d", reinject)},
	})
	body := "X-Relaykeeper-Original-Client: " + victim + ":2525\r\n" + gmailMessage("bob@attacker.example", "forged client")
	tx, err := sendFrom(r.addr(), spammer, "bob@attacker.example", []string{"carol@gmail.test"}, body)
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	ban := r.waitEvent("ban", 30*time.Second, nil)
	if ban == nil {
		t.Fatalf("no ban; events %v", fieldsOf(r.events("")))
	}
	if got := ban.Get("client"); got != spammer {
		t.Errorf("banned %s; want the spammer %s (the victim %s was named by the spammer's own header)", got, spammer, victim)
	}
	time.Sleep(300 * time.Millisecond)
	if es := eventsWith(r, "ban", "client", victim); len(es) > 0 {
		t.Errorf("the victim was banned: %v", fieldsOf(es))
	}
}

// TestRevEnf2BanLineAfterCrash: a ban takes effect ban_delay after Gmail's
// refusal, and its lines (the mail log's ban event, the ban_log line that
// fail2ban reads) are written then. The relay killed within the delay
// (kill -9, OOM, power loss) kept the ban in its ban file but never wrote
// the lines after its restart: fail2ban never blocked the client. A ban
// not in force yet when the relay starts is one whose lines are still due.
func TestRevEnf2BanLineAfterCrash(t *testing.T) {
	t.Parallel()
	const spammer = "127.0.0.67"
	gmail := newFakeGmail(t)
	gmail.answer("dan@gmail.test", stData, gmailUnsolicited)
	banLog := filepath.Join(t.TempDir(), "ban.log")
	r := startEnforcer(t, gmail.Addr(), enforceOpts{
		config: fmt.Sprintf("[enforce]\nban_delay = \"6s\"\nban_log = %q\n", banLog),
	})
	tx, err := sendFrom(r.addr(), spammer, "bob@attacker.example", []string{"dan@gmail.test"}, gmailMessage("bob@attacker.example", "crash"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	if !waitFor(10*time.Second, func() bool {
		data, _ := os.ReadFile(enforceFile(r, "bans"))
		return strings.Contains(string(data), spammer)
	}) {
		t.Fatalf("no ban in the ban file")
	}
	r.kill()
	r.restart()
	if !waitFor(15*time.Second, func() bool {
		data, _ := os.ReadFile(banLog)
		return strings.Contains(string(data), "bannable gmail-unsolicited") && strings.HasSuffix(strings.TrimSpace(string(data)), " "+spammer)
	}) {
		data, _ := os.ReadFile(banLog)
		t.Errorf("ban_log after the restart:\n%s\nwant the spammer's bannable line", data)
	}
	if len(eventsWith(r, "ban", "client", spammer)) != 1 {
		t.Errorf("ban events for %s: %v; want 1", spammer, fieldsOf(eventsWith(r, "ban", "client", spammer)))
	}
}

// TestRevEnf2WelcomelistedNotBlocked: a spammer sending as
// bob@partner.example has partner.example blocked (Gmail: very low
// reputation of the sending domain). The block is the enforcer's shared
// state, refused at MAIL FROM; it refused the welcomelisted partner's own
// server too, though the welcomelist alone decides who is exempt from the
// enforcer's sanctions. The partner is served; anyone else sending as
// partner.example is refused.
func TestRevEnf2WelcomelistedNotBlocked(t *testing.T) {
	t.Parallel()
	const spammer, partner, other = "127.0.0.68", "127.0.0.69", "127.0.0.70"
	gmail := newFakeGmail(t)
	gmail.answer("erin@gmail.test", stData, gmailDomainReputation)
	r := startEnforcer(t, gmail.Addr(), enforceOpts{welcome: partner + "  # the partner's server\n"})
	tx, err := sendFrom(r.addr(), spammer, "bob@partner.example", []string{"erin@gmail.test"}, gmailMessage("bob@partner.example", "spam"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	r.waitEvent("block", 10*time.Second, nil)
	refused := func(ip string) bool {
		ok := waitFor(10*time.Second, func() bool {
			tx, _ := sendFrom(r.addr(), ip, "x@partner.example", []string{"frank@gmail.test"}, gmailMessage("x@partner.example", "probe"))
			return tx.Mail.code() == 554
		})
		return ok
	}
	if !refused(other) {
		t.Fatalf("partner.example not refused at MAIL FROM for %s after the block", other)
	}
	tx, err = sendFrom(r.addr(), partner, "alice@partner.example", []string{"frank@gmail.test"}, gmailMessage("alice@partner.example", "partner"))
	if err != nil || tx.Mail.code() != 250 || tx.Final.code() != 250 {
		t.Errorf("the welcomelisted partner: MAIL %v, final %v (%v); want both 250", tx.Mail, tx.Final, err)
	}
}
