package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// review11Quota is Gmail's daily-limit reply as smtp.gmail.com sends it
// after the final dot.
const review11Quota = "550-5.4.5 Daily user sending limit exceeded. For more information on Gmail\r\n" +
	"550-5.4.5 sending limits go to\r\n550 5.4.5  https://support.google.com/a/answer/166852 {id} - gsmtp"

// TestReview11RelayAccountReplies: a fake Gmail answers the relay's own
// faults (the daily sending limit, a rate limit) for a plain client and a
// welcomelisted one, and refuses the welcomelisted client's spam. Nothing
// is bounced, nobody is banned or blocked, the administrator's alert comes
// once for the cause, and the welcomelisted spam is encapsulated.
func TestReview11RelayAccountReplies(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("quota@gmail.test", stData, review11Quota)
	gmail.answer("rate@gmail.test", stRcpt, gmailRate)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	const plain, friend = "127.0.0.8", "127.0.0.9"
	cfg := "[enforce]\nban_delay = \"0s\"\n[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"2s\"\npace_suspend = \"1s\"\npace_delay = \"1s\"\n"
	r := startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg, welcome: "192.0.2.1\n" + friend + "\n"})

	send := func(ip, to, subject string) string {
		t.Helper()
		tx, err := sendFrom(r.addr(), ip, "alice@clean.example", []string{to}, gmailMessage("alice@clean.example", subject))
		if err != nil || tx.Final.code() != 250 {
			t.Fatalf("send %s from %s: %v %+v", subject, ip, err, tx)
		}
		return queuedID(t, tx.Final)
	}
	// The welcomelisted client's spam first, before the quota holds the
	// account back.
	spam := send(friend, "spam@gmail.test", "friend spam")
	r.waitEvent("encapsulate", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("orig") == spam })
	rate := send(plain, "rate@gmail.test", "rate 1")
	r.waitEvent("pace", 10*time.Second, nil)
	var quota []string
	for i, ip := range []string{plain, friend, plain} {
		quota = append(quota, send(ip, "quota@gmail.test", fmt.Sprintf("quota %d", i)))
	}
	r.waitEvent("admin-alert", 10*time.Second, nil)
	// Retries and new mail for a few seconds: still one alert.
	send(friend, "quota@gmail.test", "quota 3")
	time.Sleep(4 * time.Second)

	for _, ev := range []string{"ban", "block"} {
		for _, e := range r.events(ev) {
			t.Errorf("%s line: %v; want nobody sanctioned", ev, e.Fields)
		}
	}
	for _, e := range r.events("delivery") {
		if e.Get("result") == "bounced" || e.Get("result") == "failed" {
			t.Errorf("delivery line %v; want nothing bounced", e.Fields)
		}
	}
	alerts := map[string]int{}
	for _, e := range r.events("admin-alert") {
		alerts[e.Get("rule")]++
	}
	if alerts["gmail-sending-limit"] != 1 {
		t.Errorf("admin-alert lines by rule %v; want gmail-sending-limit once", alerts)
	}
	for _, id := range append(quota, rate) {
		if s := msgState(r.spool, id); s == "gone" && id != rate || s == "failed" {
			t.Errorf("message %s is %s; want it kept", id, s)
		}
	}
	if n := len(opsNotices(r, "")); n != 0 {
		t.Errorf("%d notices; want none", n)
	}
	if es := enforceEvents(r, friend); actionOf(es) == "ban" || strings.Contains(actionOf(es), "block") {
		t.Errorf("welcomelisted client's events %s; want no sanction", actionOf(es))
	}
}

// wrongLoginUpstream starts an upstream that wants a login (authUpstream)
// and returns it, its certificate and a client secrets file with a wrong
// password for it.
func wrongLoginUpstream(t *testing.T) (up *relay, pem, secrets string) {
	t.Helper()
	up, pem = authUpstream(t, harness.StartSink(t, harness.SinkOptions{}))
	return up, pem, writeFile(t, t.TempDir(), "client.secrets", "client plain alice@rk.test wrong-password\n", 0o600)
}

// TestReview11AuthAlertOnce: the smarthost refuses the relay's login on
// every attempt; over several messages and retries the administrator's
// alert comes once, and nothing is bounced.
func TestReview11AuthAlertOnce(t *testing.T) {
	t.Parallel()
	up, pem, sec := wrongLoginUpstream(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "relaykeeper.toml", "[enforce]\nban_delay = \"0s\"\n[delivery]\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"1s\"\n", 0o644)
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.addr(), "--forward-on-disconnect",
		"--client-tls", "--client-auth", sec, "--client-tls-verify", pem, "--config", cfg,
		"--welcomelist", writeFile(t, dir, "welcomelist", "192.0.2.1\n", 0o644),
		"--interface", "127.0.0.1", "--domain", "relay.test", "--spool-dir", t.TempDir())
	for i := range 3 {
		mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message(fmt.Sprintf("wrong password %d", i)))
	}
	r.waitEvent("alert", 10*time.Second, nil)
	// Several retries of each message.
	waitFor(8*time.Second, func() bool {
		n := 0
		for _, e := range r.events("delivery") {
			if e.Get("result") == "deferred" {
				n++
			}
		}
		return n >= 9
	})
	n := 0
	for _, e := range r.events("delivery") {
		switch e.Get("result") {
		case "deferred":
			n++
		case "bounced", "failed":
			t.Errorf("delivery line %v; want nothing bounced", e.Fields)
		}
	}
	if n < 6 {
		t.Errorf("%d deferrals; want retries", n)
	}
	if a := r.events("admin-alert"); len(a) != 1 {
		t.Errorf("%d admin-alert lines; want one for the cause:\n%v", len(a), a)
	}
}

// TestReview11RelayForeignMX: a relay that delivers by MX sends a client's
// mail, as victim.example, to a domain whose mail server the client runs;
// that server answers with Gmail's domain-reputation refusal, "gsmtp" and
// all. The relay must not block victim.example on a stranger's say-so.
func TestReview11RelayForeignMX(t *testing.T) {
	t.Parallel()
	const mxEvil = "127.0.71.41"
	evil := newFakeGmail(t)
	evil.answer("x@attacker.test", stData, gmailDomainReputation)
	forwardPort25(t, mxEvil, evil.Addr())
	dns := harness.StartDNS(t, fmt.Sprintf("attacker.test. MX 5 mx.attacker.test.\nmx.attacker.test. A %s\n", mxEvil))
	dir := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ndefault_transport = \"smtp\"\ndns_server = %q\n[enforce]\nban_delay = \"0s\"\n", dns.Addr()))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--interface", "127.0.0.1",
		"--domain", relayDomain, "--spool-dir", t.TempDir(), "--config", cfg,
		"--welcomelist", writeFile(t, dir, "welcomelist", "# nobody\n192.0.2.1\n", 0o644))
	tx, err := sendFrom(r.addr(), "127.0.5.10", "bob@victim.example", []string{"x@attacker.test"}, gmailMessage("bob@victim.example", "steer"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	r.waitEvent("delivery", 10*time.Second, nil)
	time.Sleep(time.Second)
	for _, e := range r.events("block") {
		t.Errorf("block line %v; want no domain blocked on a foreign server's word", e.Fields)
	}
}
