package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestRoutingTransports: the seed guide's routing, in relaykeeper's
// config: transport_maps send one domain to one next hop and the rest to the
// default; a sender-dependent transport sends from its own address with its
// own HELO; an error: route fails its recipient at once. Each next hop
// records what it saw.
func TestRoutingTransports(t *testing.T) {
	t.Parallel()
	hopA := harness.NewFakeSMTP(t, harness.Script{})
	hopB := harness.NewFakeSMTP(t, harness.Script{})
	dir := t.TempDir()
	transport := filepath.Join(dir, "transport")
	os.WriteFile(transport, []byte(fmt.Sprintf("example.com relay:[%s]:%s\nbroken.example error:5.1.2 we do not send there\ndrop.example discard:dropped by policy\n",
		hostOf(hopA.Addr()), portOf(hopA.Addr()))), 0o644)
	senders := filepath.Join(dir, "sender_transports")
	os.WriteFile(senders, []byte("@zombig.name zombig_name\n"), 0o644)
	cfg := writeConfig(t, fmt.Sprintf(`
[routing]
transport_maps = ["hash:%s"]
sender_dependent_default_transport_maps = ["hash:%s"]

[transports.zombig_name]
nexthop = "[%s]:%s"
bind_address = "127.0.0.2"
helo_name = "mail.zombig.name"
`, transport, senders, hostOf(hopB.Addr()), portOf(hopB.Addr())))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", "127.0.0.1:9", "--forward-on-disconnect", "--no-bounces",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())

	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.com"}, message("to example.com"))
	mustSend(t, r.addr(), "news@zombig.name", []string{"carol@elsewhere.example", "dave@broken.example", "erin@drop.example"}, message("from zombig"))

	a := hopA.WaitTransactions(t, 1, 10*time.Second)
	if got := a[0].To(); len(got) != 1 || got[0] != "bob@example.com" {
		t.Errorf("example.com's next hop got %v; want bob@example.com", got)
	}
	b := hopB.WaitTransactions(t, 1, 10*time.Second)
	if got := b[0].To(); len(got) != 1 || got[0] != "carol@elsewhere.example" {
		t.Errorf("zombig_name's next hop got %v; want carol@elsewhere.example only", got)
	}
	if b[0].Helo != "mail.zombig.name" || !strings.HasPrefix(b[0].Client, "127.0.0.2:") {
		t.Errorf("zombig_name session from %s with HELO %q; want 127.0.0.2 and mail.zombig.name", b[0].Client, b[0].Helo)
	}
	if a[0].Helo == "mail.zombig.name" || strings.HasPrefix(a[0].Client, "127.0.0.2:") {
		t.Errorf("the relay transport used zombig's HELO or address: %s %q", a[0].Client, a[0].Helo)
	}
	e := r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<dave@broken.example>" })
	if e.Get("result") != "bounced" || !strings.Contains(e.Get("reply"), "5.1.2 we do not send there") {
		t.Errorf("error: route delivery line = %v; want bounced with the table's text", e.Fields)
	}
	// discard:TEXT is logged with the text, as Postfix's discard(8) does.
	e = r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("to") == "<erin@drop.example>" })
	if e.Get("result") != "sent" || e.Get("relay") != "none" || !strings.Contains(e.Get("reply"), "dropped by policy") {
		t.Errorf("discard: route delivery line = %v; want sent, relay=none, with the table's text", e.Fields)
	}
}

func hostOf(addr string) string { h, _, _ := strings.Cut(addr, ":"); return h }
func portOf(addr string) string { _, p, _ := strings.Cut(addr, ":"); return p }

// TestRoutingSighupReloads: a transport_maps entry added while the relay
// runs is used after SIGHUP: mail for the domain goes to the new next hop,
// and the log says the routing tables were reloaded. A table broken
// afterwards is refused, and the routes in force stay.
func TestRoutingSighupReloads(t *testing.T) {
	t.Parallel()
	hopA := harness.NewFakeSMTP(t, harness.Script{})
	hopB := harness.NewFakeSMTP(t, harness.Script{})
	dir := t.TempDir()
	transport := filepath.Join(dir, "transport")
	entryA := fmt.Sprintf("example.com relay:[%s]:%s\n", hostOf(hopA.Addr()), portOf(hopA.Addr()))
	os.WriteFile(transport, []byte(entryA), 0o644)
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ntransport_maps = [\"texthash:%s\"]\n", transport))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", "127.0.0.1:9", "--forward-on-disconnect", "--no-bounces",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--log")

	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.com"}, message("before"))
	hopA.WaitTransactions(t, 1, 10*time.Second)

	entryB := fmt.Sprintf("example.net relay:[%s]:%s\n", hostOf(hopB.Addr()), portOf(hopB.Addr()))
	os.WriteFile(transport, []byte(entryA+entryB), 0o644)
	r.current().Signal(syscall.SIGHUP)
	if !waitFor(3*time.Second, func() bool { return strings.Contains(r.stderr(), "routing tables reloaded") }) {
		t.Fatalf("no \"routing tables reloaded\" in the log within 3s of SIGHUP")
	}
	mustSend(t, r.addr(), "alice@example.org", []string{"carol@example.net"}, message("after"))
	b := hopB.WaitTransactions(t, 1, 10*time.Second)
	if got := b[0].To(); len(got) != 1 || got[0] != "carol@example.net" {
		t.Errorf("the new next hop got %v; want carol@example.net", got)
	}

	os.WriteFile(transport, []byte(entryA+"example.org nosuch:\n"), 0o644)
	r.current().Signal(syscall.SIGHUP)
	if !waitFor(3*time.Second, func() bool { return strings.Contains(r.stderr(), "routing tables not reloaded") }) {
		t.Fatalf("a broken table was not refused within 3s of SIGHUP")
	}
	mustSend(t, r.addr(), "alice@example.org", []string{"dave@example.net"}, message("kept"))
	hopB.WaitTransactions(t, 2, 10*time.Second)
}

// TestFallbackRelaySafetyNet: routing.smtp_fallback_relay (Postfix's) is
// the safety net behind the smarthost: with --forward-to down, queued mail
// goes to the fallback relay; with the smarthost putting a recipient off
// (451 at RCPT), that recipient goes there in the same delivery, and the
// recipient it took stays with it.
func TestFallbackRelaySafetyNet(t *testing.T) {
	t.Parallel()
	fallback := harness.NewFakeSMTP(t, harness.Script{})
	fbHop := fmt.Sprintf("[%s]:%s", hostOf(fallback.Addr()), portOf(fallback.Addr()))
	cfg := writeConfig(t, fmt.Sprintf("[routing]\nsmtp_fallback_relay = [%q]\n", fbHop))

	down := harness.FreePort(t)
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", fmt.Sprintf("127.0.0.1:%d", down), "--forward-on-disconnect",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("smarthost down"))
	if tx := fallback.WaitTransactions(t, 1, 15*time.Second); tx[0].MailFrom != "alice@example.org" {
		t.Errorf("the fallback relay got %+v", tx[0])
	}

	smarthost := harness.NewFakeSMTP(t, harness.Script{RcptFor: map[string]harness.Response{
		"later@example.net": {Reply: "451 4.3.0 try again later"}}})
	r2 := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", smarthost.Addr(), "--forward-on-disconnect",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	mustSend(t, r2.addr(), "carol@example.org", []string{"now@example.net", "later@example.net"}, message("one put off"))
	txs := fallback.WaitTransactions(t, 2, 15*time.Second)
	if got := txs[1]; got.MailFrom != "carol@example.org" || len(got.Rcpts) != 1 || got.Rcpts[0].Addr != "later@example.net" {
		t.Errorf("the fallback relay got %+v; want later@example.net alone", got)
	}
	sm := smarthost.WaitTransactions(t, 1, 15*time.Second)
	if accepted := sm[0].To(); !sm[0].Accepted() || len(accepted) != 1 || accepted[0] != "now@example.net" {
		t.Errorf("the smarthost kept %v; want now@example.net", accepted)
	}
}
