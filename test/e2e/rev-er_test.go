package e2e

// E-MailRelay compatibility, attacked as an E-MailRelay 2.6 user would.

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// erEnvelope is an envelope as E-MailRelay 2.6.1 writes it.
const erEnvelope = "X-MailRelay-Format: #2821.8\r\nX-MailRelay-Content: 7bit\r\n" +
	"X-MailRelay-From: alice@example.org\r\nX-MailRelay-ToCount: 1\r\n" +
	"X-MailRelay-To-Remote: bob@example.net\r\nX-MailRelay-Authentication: \r\n" +
	"X-MailRelay-Client: 127.0.0.1:4000\r\nX-MailRelay-ClientCertificate: \r\n" +
	"X-MailRelay-MailFromAuthIn: \r\nX-MailRelay-MailFromAuthOut: \r\n" +
	"X-MailRelay-ForwardTo: \r\nX-MailRelay-ForwardToAddress: \r\n" +
	"X-MailRelay-ClientAccountSelector: \r\nX-MailRelay-Utf8MailboxNames: 0\r\n" +
	"X-MailRelay-End: 1\r\n"

// TestRevERMigratedSpoolDeferred: a message E-MailRelay left in its spool
// (emailrelay.PID.TIME.SEQ, an envelope without relaykeeper's arrival line)
// that the smarthost defers stays queued for the next run. It used to be
// failed at once as "expired after 106751 days" in the queue, with a
// failure notice to its sender and "X-MailRelay-ReasonCode: mes".
func TestRevERMigratedSpoolDeferred(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	// A message E-MailRelay took an hour ago, by its name.
	id := fmt.Sprintf("emailrelay.4242.%d.1", time.Now().Add(-time.Hour).Unix())
	if err := os.WriteFile(filepath.Join(spool, id+".content"), []byte("Subject: left by emailrelay\r\n\r\nhi\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(spool, id+".envelope"), []byte(erEnvelope), 0o600); err != nil {
		t.Fatal(err)
	}
	sink := harness.NewFakeSMTP(t, harness.Script{Rcpt: harness.Response{Reply: "451 4.3.0 try again later"}})
	code, out, p := runClient(t, "--as-client", sink.Addr(), "--spool-dir", spool)
	line := summary(t, out)
	if code != 1 || count(line, "deferred") != 1 || count(line, "failed") != 0 {
		t.Errorf("--as-client: exit %d, summary %q; want exit 1, 1 deferred, 0 failed\n%s", code, line, p.Stderr())
	}
	ents, err := os.ReadDir(spool)
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			files = append(files, e.Name())
		}
	}
	env, err := os.ReadFile(filepath.Join(spool, id+".envelope"))
	if err != nil {
		t.Fatalf("the deferred message is not ready any more: spool %v", files)
	}
	if len(files) != 2 {
		t.Errorf("spool = %v; want only the message's two files (no failure notice)", files)
	}
	if strings.Contains(string(env), "expired") || strings.Contains(p.Stderr(), "expired") {
		t.Errorf("the message was taken for expired:\n%s\n%s", env, p.Stderr())
	}
}

// TestRevERInterfaceName: E-MailRelay's "--interface lo-ipv4" (a network
// interface's name, with a family) listens on that interface's addresses;
// it used to fail to start, looking the name up in the DNS.
func TestRevERInterfaceName(t *testing.T) {
	t.Parallel()
	if _, err := net.InterfaceByName("lo"); err != nil {
		harness.Missing(t, "no interface lo: %v", err)
	}
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "lo-ipv4", "--spool-dir", t.TempDir())
	tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("on lo"))
	queuedID(t, tx.Final)
}

// TestRevERDailyLogFile: E-MailRelay's "--log-file /var/log/emailrelay-%d"
// logs to a file named by the date; it used to create "emailrelay-%d".
func TestRevERDailyLogFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	before := time.Now().Format("20060102")
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--log-file", filepath.Join(dir, "relay-%d.log"))
	r.stop(15 * time.Second)
	after := time.Now().Format("20060102")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) == 0 || (ents[0].Name() != "relay-"+before+".log" && ents[0].Name() != "relay-"+after+".log") {
		t.Errorf("log directory holds %v; want relay-%s.log", ents, before)
	}
}

// TestRevERFilterExit103Forwards: in E-MailRelay a server filter that exits
// 103 has the spool forwarded now, and --filter exit:103 forwards every
// message at once (docs/filters.md) on a store-and-forward relay without
// --poll. relaykeeper stored the message and forwarded nothing: without a
// trigger switch there was no scheduler for the filter to kick.
func TestRevERFilterExit103Forwards(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool,
		"--forward-to", sink.Addr(), "--filter", "exit:103")
	for i := range 2 {
		tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message(fmt.Sprintf("rescan %d", i)))
		queuedID(t, tx.Final)
		sink.WaitTransactions(t, i+1, 20*time.Second)
	}
	// Without the filter's request nothing moves: exit:0 only stores.
	sink2 := harness.NewFakeSMTP(t, harness.Script{})
	r2 := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--forward-to", sink2.Addr(), "--filter", "exit:0")
	mustSend(t, r2.addr(), "alice@example.org", []string{"bob@example.net"}, message("stored"))
	time.Sleep(2 * time.Second)
	if n := len(sink2.Transactions()); n != 0 {
		t.Errorf("with --filter exit:0 the upstream saw %d transactions; want 0 (store only)", n)
	}
}

// TestRevERForwardToAddress: a filter that writes E-MailRelay's
// X-MailRelay-ForwardToAddress (its per-message next hop, which its mx:
// filter and routing scripts set) sends that message there instead of to
// --forward-to. relaykeeper kept the field and sent the message to
// --forward-to all the same.
func TestRevERForwardToAddress(t *testing.T) {
	t.Parallel()
	smarthost := harness.NewFakeSMTP(t, harness.Script{})
	other := harness.NewFakeSMTP(t, harness.Script{})
	route := script(t, "route.sh", `
case "$(cat "$1")" in
*elsewhere*) sed -i 's/^X-MailRelay-ForwardToAddress: .*/X-MailRelay-ForwardToAddress: `+other.Addr()+`\r/' "$2" ;;
esac
exit 0
`)
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", t.TempDir(),
		"--forward-to", smarthost.Addr(), "--forward-on-disconnect", "--filter", route)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("to elsewhere"))
	mustSend(t, r.addr(), "alice@example.org", []string{"carol@example.net"}, message("to the smarthost"))
	got := other.WaitTransactions(t, 1, 20*time.Second)
	if len(got[0].Rcpts) != 1 || got[0].Rcpts[0].Addr != "bob@example.net" {
		t.Errorf("the ForwardToAddress host got %+v; want the message to bob", got[0].Rcpts)
	}
	sm := smarthost.WaitTransactions(t, 1, 20*time.Second)
	if len(sm) != 1 || sm[0].Rcpts[0].Addr != "carol@example.net" {
		t.Errorf("--forward-to got %d transactions (%+v); want only carol's", len(sm), sm)
	}
}

// TestRevERToLocalNotForwarded: E-MailRelay's To-Local lines name local
// mailboxes (its address verifier's exit 0, for deliver: or POP), not
// addresses. relaykeeper forwarded them as recipients ("RCPT TO:<alice>")
// to the smarthost. Now a message's remote recipients go and its To-Local
// lines stay; a message with only local ones fails with E-MailRelay's "no
// remote recipients" (taking it for delivered would have removed it).
func TestRevERToLocalNotForwarded(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	both := strings.Replace(erEnvelope, "X-MailRelay-To-Remote:", "X-MailRelay-To-Local: postmaster\r\nX-MailRelay-To-Remote:", 1)
	localOnly := strings.Replace(erEnvelope, "X-MailRelay-To-Remote: bob@example.net", "X-MailRelay-To-Local: alice", 1)
	for id, env := range map[string]string{"emailrelay.1.1764982800.1": both, "emailrelay.1.1764982800.2": localOnly} {
		if err := os.WriteFile(filepath.Join(spool, id+".content"), []byte("Subject: x\r\n\r\nhi\r\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(spool, id+".envelope"), []byte(env), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sink := harness.NewFakeSMTP(t, harness.Script{})
	code, out, p := runClient(t, "--as-client", sink.Addr(), "--spool-dir", spool)
	line := summary(t, out)
	var rcpts []string
	for _, tx := range sink.Transactions() {
		for _, r := range tx.Rcpts {
			rcpts = append(rcpts, r.Addr)
		}
	}
	if strings.Join(rcpts, ",") != "bob@example.net" {
		t.Errorf("the smarthost was sent to %q; want only bob@example.net (To-Local is no address)", rcpts)
	}
	if code != 1 || count(line, "delivered") != 1 || count(line, "failed") != 1 {
		t.Errorf("--as-client: exit %d, %q; want exit 1, 1 delivered, 1 failed\n%s", code, line, p.Stderr())
	}
	bad, err := os.ReadFile(filepath.Join(spool, "emailrelay.1.1764982800.2.envelope.bad"))
	if err != nil || !strings.Contains(string(bad), "X-MailRelay-To-Local: alice\r\n") ||
		!strings.Contains(string(bad), "X-MailRelay-Reason: no remote recipients\r\n") {
		t.Errorf("the local-only message: %v\n%s; want it failed, its To-Local kept, reason no remote recipients", err, bad)
	}
}

// TestRevERClientFilterAbandonCounted: a client filter that abandons a
// message (exit 100: "skip it, leave it") leaves it queued, and --as-client
// says so: "not tried", exit 1. It used to print "0 message(s)" and exit
// 0, "all delivered", with every message still in the spool.
func TestRevERClientFilterAbandonCounted(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	ids := spoolMessages(t, spool, 2)
	sink := harness.NewFakeSMTP(t, harness.Script{})
	code, out, p := runClient(t, "--as-client", sink.Addr(), "--spool-dir", spool, "--client-filter", "exit:100")
	line := summary(t, out)
	if code != 1 || !strings.Contains(line, "2 message(s)") || count(line, "not tried") != 2 {
		t.Errorf("--as-client with an abandoning client filter: exit %d, %q; want exit 1, 2 message(s), 2 not tried\n%s", code, line, p.Stderr())
	}
	if got := idsIn(spoolFiles(t, spool), "content", "envelope"); !slices.Equal(got, ids) {
		t.Errorf("spool ready = %v; want %v left where they were", got, ids)
	}
}

// TestRevERClientMissingSpool: "--as-client HOST --spool-dir DIR" with a
// mistyped DIR said "0 message(s): 0 delivered" and exited 0, having made
// the directory; E-MailRelay says the spool directory is invalid. Now it
// fails, naming the directory, and makes nothing.
func TestRevERClientMissingSpool(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "no-such-spool")
	sink := harness.NewFakeSMTP(t, harness.Script{})
	code, _, p := runClient(t, "--as-client", sink.Addr(), "--spool-dir", dir)
	if code == 0 || !strings.Contains(p.Stderr(), dir) {
		t.Errorf("--as-client with a missing spool: exit %d, stderr %q; want a failure naming %s", code, p.Stderr(), dir)
	}
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("--as-client made the spool directory %s", dir)
	}
}

// TestRevERResubmitScript: E-MailRelay's emailrelay-resubmit.sh with its
// file pattern changed to *.envelope.bad (docs/spool.md) works on
// relaykeeper's spool: the renamed envelope is retried at the next poll,
// and each failure appends the X-MailRelay-Reason line it counts.
func TestRevERResubmitScript(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{Rcpt: harness.Response{Reply: "550 5.1.1 no such user"}})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool,
		"--forward-to", sink.Addr(), "--poll", "1", "--no-bounces")
	id := queuedID(t, mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("resubmit me")).Final)
	bad := filepath.Join(spool, id+".envelope.bad")
	reasons := func() int {
		b, err := os.ReadFile(bad)
		if err != nil {
			return -1
		}
		return strings.Count(string(b), "MailRelay-Reason:")
	}
	if !waitFor(20*time.Second, func() bool { return reasons() == 1 }) {
		t.Fatalf("no failed envelope with one Reason line: %v", spoolFiles(t, spool))
	}
	// emailrelay-resubmit.sh's loop, with the one pattern changed.
	resubmit := `for file in "$1"/*.envelope.bad ; do
	failures="$(grep -F MailRelay-Reason: < "$file" | wc -l)"
	if test "$failures" -lt 5 ; then mv -f "$file" "$(echo "$file" | sed 's/\.bad$//')" ; fi
done`
	if out, err := exec.Command("sh", "-c", resubmit, "sh", spool).CombinedOutput(); err != nil {
		t.Fatalf("resubmit: %v\n%s", err, out)
	}
	if !waitFor(20*time.Second, func() bool { return reasons() == 2 }) {
		t.Errorf("after the resubmit: Reason lines %d, spool %v; want the message retried and failed again, with 2", reasons(), spoolFiles(t, spool))
	}
	if n := len(sink.Transactions()); n != 2 {
		t.Errorf("the smarthost saw %d transactions; want 2", n)
	}
}
