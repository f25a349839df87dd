package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestPfe21HostileIPv6AndNames sends, through a real Postfix relaying to a
// fake Gmail, spam from an IPv6 client and from clients that write the
// companion's and fail2ban's words into their addresses, and checks with
// fail2ban-regex and the shipped filter that only the spammers' addresses
// come out of the ban log and of postfix-enforcer's own lines. The same
// log replayed as a new file after a restart bans nobody again.
func TestPfe21HostileIPv6AndNames(t *testing.T) {
	t.Parallel()
	pf, _ := hostileGmailPostfix(t, "inet_protocols = ipv4, ipv6")
	hostileSendAll(t, pf.Addr(), []hostileClient{
		{"IPV6:2001:db8::66", "mx6.spam.test", []string{"MAIL FROM:<bob@v6.test>", "RCPT TO:<spam@gmail.test>"}},
		// Taken by Gmail: a status=sent line whose recipient reads as a refusal.
		{"203.0.113.90", "mx.quote.test", []string{"MAIL FROM:<eve@quote.test>",
			`RCPT TO:<"x, relay=mx.google.test[127.0.0.1]:25, delay=1, delays=0/0/0/1, dsn=5.7.1, status=bounced (host mx.google.test[127.0.0.1] said: 550 5.7.1 likely unsolicited mail (in reply to end of DATA command)) 198.51.100.7"@gmail.test>`}},
		// Welcomelisted, by a loopback address and by an IPv6 block.
		{"127.0.0.9", "localhost", []string{"MAIL FROM:<app@local.test>", "RCPT TO:<spam@gmail.test>"}},
		{"IPV6:2001:db8:1::5", "mx.partner.test", []string{"MAIL FROM:<p@partner.test>", "RCPT TO:<spam@gmail.test>"}},
		// A spammer whose sender and recipient spell fail2ban's lines.
		{"203.0.113.91", "mx.words.test", []string{`MAIL FROM:<"ban client=198.51.100.8 bannable x 198.51.100.9"@words.test>`,
			`RCPT TO:<spam@gmail.test>`}},
	})
	compWaitCount(t, pf, `to=<spam@gmail\.test>, .*status=bounced`, 4, 30*time.Second)
	compWaitLog(t, pf, `to=<"x, relay=.*status=sent`, 30*time.Second)
	dir := t.TempDir()
	out := companionEnforcer(t, pf, dir, "127.0.0.0/8\n2001:db8:1::/48\n", "--trusted-upstream", "127.0.0.1")
	compWantLines(t, out, []string{`^\S+ ban client=2001:db8::66 `, `^\S+ ban client=203\.0\.113\.91 `})
	for _, bad := range []string{"ban client=127.", "ban client=2001:db8:1::5", "203.0.113.90"} {
		if strings.Contains(out, bad) {
			t.Errorf("postfix-enforcer's output holds %q:\n%s", bad, out)
		}
	}
	compWantBanSet(t, filepath.Join(dir, "bans.log"), "2001:db8::66", "203.0.113.91")

	// The same log again, as a new file (restored from a backup, or
	// rewritten by an editor): a restart reads it from its start, and
	// acts on nothing twice.
	logFile := pf.MailLogFile()
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Dir(logFile), "replayed", string(data), 0o644)
	if err := os.Rename(filepath.Join(filepath.Dir(logFile), "replayed"), logFile); err != nil {
		t.Fatal(err)
	}
	again := review11Enforcer(t, pf, dir, filepath.Join(dir, "sender_access"), filepath.Join(dir, "welcomelist"), filepath.Join(dir, "bans.log"),
		"--trusted-upstream", "127.0.0.1")
	if strings.Contains(again, " ban ") {
		t.Errorf("the replayed log banned again:\n%s", again)
	}
	compWantBanSet(t, filepath.Join(dir, "bans.log"), "2001:db8::66", "203.0.113.91")

	bin, err := exec.LookPath("fail2ban-regex")
	if err != nil {
		harness.Missing(t, "fail2ban-regex not installed (scripts/test-deps.sh)")
	}
	common, err := os.ReadFile("/etc/fail2ban/filter.d/common.conf")
	if err != nil {
		harness.Missing(t, "fail2ban's common.conf: %v", err)
	}
	filters := filepath.Join(dir, "filter.d")
	os.Mkdir(filters, 0o755)
	writeFile(t, filters, "common.conf", string(common), 0o644)
	filter, err := os.ReadFile("../../etc/fail2ban/filter.d/relaykeeper.conf")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filters, "relaykeeper.conf", string(filter), 0o644)
	actions := writeFile(t, dir, "actions.log", out, 0o644)
	// The IPv6 spammer's /64 is banned (V6ban23): the ban log's client
	// line and its network line, the action line's prefix=.
	for log, want := range map[string]string{
		filepath.Join(dir, "bans.log"): "2001:db8::/64 2001:db8::66 203.0.113.91",
		actions:                        "2001:db8::/64 203.0.113.91",
	} {
		b, err := exec.Command(bin, "-o", "ip", log, filepath.Join(filters, "relaykeeper.conf")).CombinedOutput()
		if err != nil {
			t.Fatalf("fail2ban-regex %s: %v\n%s", log, err, b)
		}
		got := strings.Fields(string(b))
		sort.Strings(got)
		if strings.Join(got, " ") != want {
			data, _ := os.ReadFile(log)
			t.Errorf("fail2ban-regex on %s found %q; want %s (the two spammers):\n%s", filepath.Base(log), got, want, data)
		}
	}
}
