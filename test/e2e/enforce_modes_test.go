package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// mxGmail is the address of the fake Gmail's MX, on port 25.
const mxGmail = "127.0.71.31"

// TestEnforceByMX: a relay that delivers by MX (default_transport =
// "smtp", no forward.to) enforces as one with a smarthost does: Gmail's
// spam refusal bans the submitting client, who is then refused at
// connection.
func TestEnforceByMX(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	forwardPort25(t, mxGmail, gmail.Addr())
	dns := harness.StartDNS(t, fmt.Sprintf("gmail.test. MX 5 mx.gmail.test.\nmx.gmail.test. A %s\n", mxGmail))
	dir := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ndefault_transport = \"smtp\"\ndns_server = %q\n[enforce]\nban_delay = \"0s\"\ntrusted_upstreams = [%q]\n", dns.Addr(), mxGmail))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--interface", "127.0.0.1",
		"--domain", relayDomain, "--spool-dir", t.TempDir(), "--config", cfg,
		"--welcomelist", writeFile(t, dir, "welcomelist", "# nobody\n192.0.2.1\n", 0o644))
	const ip = "127.0.5.9"
	tx, err := sendFrom(r.addr(), ip, "a@spam.example", []string{"spam@gmail.test"}, gmailMessage("a@spam.example", "by mx"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	ban := r.waitEvent("ban", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == ip })
	if ban.Get("rule") != "gmail-unsolicited" {
		t.Errorf("ban line %v; want rule=gmail-unsolicited", ban.Fields)
	}
	if _, greet, _ := dialFrom(r.addr(), ip); greet.code() != 554 {
		t.Errorf("greeting once banned: %q; want 554", greet)
	}
}

// TestEnforceLocalPickup: a message submitted locally (relaykeeper submit,
// no client address) that Gmail refuses as spam bans nobody: it is sent on
// encapsulated, as the welcomelist's clients' are.
func TestEnforceLocalPickup(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	r := startEnforcer(t, gmail.Addr(), enforceOpts{extra: []string{"--poll", "1"}})
	out, errOut, code := opsCmd(t, gmailMessage("a@local.example", "local"), "submit", "--spool-dir", r.spool,
		"-f", "a@local.example", "spam@gmail.test")
	if code != 0 {
		t.Fatalf("submit: exit %d %q %q", code, out, errOut)
	}
	spare := r.waitEvent("spare", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("reason") == "local" })
	enc := r.waitEvent("encapsulate", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("orig") == spare.Get("id") })
	if enc.Get("to") != "<spam@gmail.test>" || enc.Get("rule") != "gmail-unsolicited" {
		t.Errorf("encapsulate line %v; want to=<spam@gmail.test> rule=gmail-unsolicited", enc.Fields)
	}
	if bans := r.events("ban"); len(bans) != 0 {
		t.Errorf("ban lines %v; want none", fieldsOf(bans))
	}
}

// TestEnforceBanLinesOnStop: a relay stopped within the ban delay still
// writes the ban's lines (the mail log's ban event, and the bannable line
// in ban_log) before it exits; none is lost with the process.
func TestEnforceBanLinesOnStop(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	banLog := filepath.Join(t.TempDir(), "bans.log")
	cfg := fmt.Sprintf("[enforce]\nban_delay = \"1h\"\nban_log = %q\n", banLog)
	r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: true, config: cfg})
	const ip = "127.0.5.10"
	tx, err := sendFrom(r.addr(), ip, "a@spam.example", []string{"spam@gmail.test"}, gmailMessage("a@spam.example", "stop"))
	if err != nil || tx.Final.code() != 550 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	r.waitEvent("proxy", 5*time.Second, func(e *maillog.Entry) bool { return strings.HasPrefix(e.Get("client"), ip) })
	if bans := r.events("ban"); len(bans) != 0 {
		t.Fatalf("ban lines before the ban delay: %v", fieldsOf(bans))
	}
	r.stop(15 * time.Second)
	if bans := r.events("ban"); len(bans) != 1 || bans[0].Get("client") != ip {
		t.Errorf("ban lines after stop: %v; want one for %s", fieldsOf(bans), ip)
	}
	data, _ := os.ReadFile(banLog)
	if !regexp.MustCompile(`(?m)^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d \S+ relay-enforcer\[\d+\]: bannable .* ` + regexp.QuoteMeta(ip) + `$`).Match(data) {
		t.Errorf("ban_log:\n%s\nwant relay-enforcer's bannable line for %s", data, ip)
	}
}
