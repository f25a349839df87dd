package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRevOps2SystemdUnitVerifies: the shipped units (the relay's and
// postfix-enforcer's), with ExecStart pointing at the binary under test,
// pass "systemd-analyze verify" (unknown or misspelt directives, a wrong
// section, a bad ExecStart, a sandbox setting this systemd does not know
// all fail it). Nothing checked the unit before: TestMakeInstall only looks
// for its ExecStart line.
func TestRevOps2SystemdUnitVerifies(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		harness.Missing(t, "systemd-analyze is not installed (scripts/test-deps.sh)")
	}
	for _, name := range []string{"relaykeeper.service", "relaykeeper-postfix-enforcer.service"} {
		unit, err := os.ReadFile("../../etc/" + name)
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(unit), "/usr/local/sbin/relaykeeper", harness.Binary(t))
		if text == string(unit) {
			t.Fatalf("etc/%s does not start /usr/local/sbin/relaykeeper:\n%s", name, unit)
		}
		path := filepath.Join(t.TempDir(), name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		// --man=no: the man pages are not installed here (TestManPagesRender
		// renders them).
		out, err := exec.Command(bin, "verify", "--man=no", path).CombinedOutput()
		if err != nil || len(strings.TrimSpace(string(out))) > 0 {
			t.Errorf("systemd-analyze verify etc/%s: %v\n%s", name, err, out)
		}
	}
}

// TestRevOps2BansByMXDefault: README's first command and the shipped unit
// (no forward.to, no [routing]) deliver by MX, and docs/enforce.md says
// enforcement covers "delivery by MX as by smarthost". But enforcement was
// on only with a smarthost or a routing table: a relay delivering by MX by
// default honoured no ban ("relaykeeper bans add IP" said "banned until
// ..." and the client was still served), and acted on no refusal.
func TestRevOps2BansByMXDefault(t *testing.T) {
	t.Parallel()
	gmail := newFakeGmail(t)
	gmail.answer("spam@gmail.test", stData, gmailUnsolicited)
	forwardPort25(t, "127.0.71.32", gmail.Addr())
	dns := harness.StartDNS(t, "gmail.test. MX 5 mx.gmail.test.\nmx.gmail.test. A 127.0.71.32\n")
	dir := t.TempDir()
	spoolDir := t.TempDir()
	cfg := writeConfig(t, "[routing]\ndns_server = \""+dns.Addr()+"\"\n[enforce]\nban_delay = \"0s\"\ntrusted_upstreams = [\"127.0.71.32\"]\n")
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--interface", "127.0.0.1",
		"--domain", relayDomain, "--spool-dir", spoolDir, "--config", cfg,
		"--welcomelist", writeFile(t, dir, "welcomelist", "# nobody\n192.0.2.1\n", 0o644))

	// A ban by hand.
	const banned = "127.0.5.21"
	if out, errOut, code := opsCmd(t, "", "bans", "--spool-dir", spoolDir, "add", banned); code != 0 {
		t.Fatalf("bans add: exit %d %q %q", code, out, errOut)
	}
	if !waitFor(10*time.Second, func() bool {
		_, greet, _ := dialFrom(r.addr(), banned)
		return greet.code() == 554
	}) {
		_, greet, _ := dialFrom(r.addr(), banned)
		t.Errorf("greeting to a client banned by hand, delivering by MX: %q; want 554", greet)
	}

	// A ban by Gmail's refusal.
	const ip = "127.0.5.22"
	tx, err := sendFrom(r.addr(), ip, "a@spam.example", []string{"spam@gmail.test"}, gmailMessage("a@spam.example", "by mx default"))
	if err != nil || tx.Final.code() != 250 {
		t.Fatalf("send: %v %+v", err, tx)
	}
	r.waitEvent("ban", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == ip })
	if _, greet, _ := dialFrom(r.addr(), ip); greet.code() != 554 {
		t.Errorf("greeting once banned: %q; want 554", greet)
	}

	// fail2ban, with the shipped filter installed beside its common.conf,
	// finds the refusal's ban in the relay's own log, and not the ban by
	// hand (the relay refuses that client itself; its lines are rejects).
	bin, err := exec.LookPath("fail2ban-regex")
	if err != nil {
		harness.Missing(t, "fail2ban-regex is not installed (scripts/test-deps.sh)")
	}
	filters := filepath.Join(t.TempDir(), "filter.d")
	os.Mkdir(filters, 0o755)
	for src, dst := range map[string]string{"/etc/fail2ban/filter.d/common.conf": "common.conf",
		"../../etc/fail2ban/filter.d/relaykeeper.conf": "relaykeeper.conf"} {
		b, err := os.ReadFile(src)
		if err != nil {
			harness.Missing(t, "%v", err)
		}
		os.WriteFile(filepath.Join(filters, dst), b, 0o644)
	}
	log := filepath.Join(t.TempDir(), "mail.log")
	os.WriteFile(log, []byte(r.stderr()), 0o644)
	out, err := exec.Command(bin, "-o", "ip", log, filepath.Join(filters, "relaykeeper.conf")).CombinedOutput()
	if got := strings.Fields(string(out)); err != nil || len(got) != 1 || got[0] != ip {
		t.Errorf("fail2ban-regex on the relay's log found %q (%v); want [%s]", got, err, ip)
	}
}

// TestRevOps2DashboardStaleClaim: a message a crashed forwarder left
// claimed (ID.envelope.busy, nobody holding its lock: an --as-client run
// killed beside the daemon) is shown on the dashboard as stuck, with the
// retry and delete buttons, and retry sends it. Before, it was "claimed"
// with no action at all, and stayed so until the relay restarted.
func TestRevOps2DashboardStaleClaim(t *testing.T) {
	t.Parallel()
	ctx := browser(t)
	up := harness.NewFakeSMTP(t, harness.Script{})
	r, base := dashboardRelay(t, up.Addr())
	tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("left claimed"))
	id := queuedID(t, tx.Final)
	env := filepath.Join(r.spool, id+".envelope")
	if !waitFor(10*time.Second, func() bool { _, err := os.Stat(env); return err == nil }) {
		t.Fatalf("%s never written", env)
	}
	if err := os.Rename(env, env+".busy"); err != nil {
		t.Fatal(err)
	}
	row := fmt.Sprintf(`#queue-table tr[data-id=%q]`, id)
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/#queue"),
		chromedp.WaitVisible(css(`%s[data-state="claimed"]`, row)),
		chromedp.WaitVisible(css(`%s .state-stale`, row)),
		chromedp.WaitVisible(css(`.act-delete[data-id=%q]`, id)),
		clickNow(`.act-retry[data-id=%q]`, id),
		chromedp.WaitVisible(css(`#confirm[open]`)),
		chromedp.Click(css(`#confirm-ok`)),
		chromedp.WaitNotPresent(css(`%s[data-state="claimed"]`, row)),
	)
	if err != nil {
		t.Fatalf("a stale claim on the dashboard: %v", err)
	}
	// This relay only stores (no --poll): the message waits, ready.
	if st := messageState(t, base, id); st != "ready" {
		t.Errorf("message %s is %q after Retry in the browser; want ready", id, st)
	}
}

// TestRevOps2QueueListAfterCrash: a relay killed (kill -9, the OOM killer)
// right after it said 250 may hold the message only in its journal
// (spool.md: files within about two seconds). `queue list` then said "Mail
// queue is empty" until a relay started again, and a Postfix administrator
// looking at the queue after the crash saw the accepted mail as lost. It is
// listed, in state "journal", with what happens to it.
func TestRevOps2QueueListAfterCrash(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Mail: harness.Response{Delay: 20 * time.Second}})
	spoolDir := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", up.Addr(), "--forward-on-disconnect",
		"--interface", "127.0.0.1", "--spool-dir", spoolDir)
	tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("after a crash"))
	id := queuedID(t, tx.Final)
	r.kill()
	if _, err := os.Stat(filepath.Join(spoolDir, id+".content")); err == nil {
		t.Skip("the relay wrote the message's files before it was killed: nothing to show")
	}
	out, errOut, code := opsCmd(t, "", "queue", "list", "--spool-dir", spoolDir)
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "journal") {
		t.Errorf("queue list after a crash: exit %d\n%s%s\nwant %s listed, in the journal", code, out, errOut, id)
	}
	js, _, _ := opsCmd(t, "", "queue", "list", "--json", "--spool-dir", spoolDir)
	if !strings.Contains(js, `"state": "journal"`) || !strings.Contains(js, `"bob@example.net"`) {
		t.Errorf("queue list --json after a crash:\n%s", js)
	}
	if out, _, code := opsCmd(t, "", "queue", "hold", id, "--spool-dir", spoolDir); code != 1 || !strings.Contains(out, "journal") {
		t.Errorf("queue hold of a message only in a dead relay's journal: exit %d\n%s", code, out)
	}
	// A relay's start writes it out, and it is an ordinary ready message.
	startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spoolDir)
	if !waitFor(10*time.Second, func() bool {
		out, _, _ := opsCmd(t, "", "queue", "list", "--spool-dir", spoolDir)
		return strings.Contains(out, id) && strings.Contains(out, "ready")
	}) {
		out, _, _ := opsCmd(t, "", "queue", "list", "--spool-dir", spoolDir)
		t.Errorf("after a restart, queue list:\n%s", out)
	}
}
