package e2e

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

const bccConfig = `[rewrite]
always_bcc = "archive@example.net"
sender_bcc_maps = ["inline:{ alice@example.org=alice-copy@example.net }"]
recipient_bcc_maps = ["inline:{ @example.com=inbound-copy@example.net }"]
`

// TestAutomaticBCC: Postfix's always_bcc, sender_bcc_maps and
// recipient_bcc_maps, which a relay that archives its mail carries in
// main.cf, and which relaykeeper had no key for. Each copy goes upstream
// as an added recipient with NOTIFY=NEVER, so that the sender never hears
// of it, even when it is refused; the null sender gets no sender copy;
// mail from the sendmail command gets them too; the proxy refuses them at
// start.
func TestAutomaticBCC(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{
		Capabilities: []string{"PIPELINING", "DSN", "ENHANCEDSTATUSCODES"},
		RcptFor:      map[string]harness.Response{"inbound-copy@example.net": {Reply: "550 5.1.1 no such archive"}},
	})
	r := opsRelay(t, up.Addr(), bccConfig, "--forward-on-disconnect")

	tx := mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.com", "carol@example.net"}, message("bcc"))
	id := queuedID(t, tx.Final)
	got := up.WaitTransactions(t, 1, 15*time.Second)[0]
	var addrs []string
	for _, rc := range got.Rcpts {
		addrs = append(addrs, rc.Addr)
		copyOf := strings.HasSuffix(rc.Addr, "-copy@example.net") || rc.Addr == "archive@example.net"
		if copyOf != strings.Contains(rc.Params, "NOTIFY=NEVER") {
			t.Errorf("RCPT TO:<%s> %s; want NOTIFY=NEVER on the copies only", rc.Addr, rc.Params)
		}
	}
	want := []string{"bob@example.com", "carol@example.net", "inbound-copy@example.net", "alice-copy@example.net", "archive@example.net"}
	if !slices.Equal(addrs, want) {
		t.Errorf("recipients upstream %v; want %v", addrs, want)
	}
	// The refused copy is failed, and nobody is told.
	r.waitEvent("delivery", 15*time.Second, func(e *maillog.Entry) bool {
		return e.Get("id") == id && e.Get("to") == "<inbound-copy@example.net>" && e.Get("result") == "bounced"
	})
	time.Sleep(500 * time.Millisecond)
	if ns := opsNotices(r, id); len(ns) != 0 {
		t.Errorf("a notice about a refused blind copy: %v", ns[0].Fields)
	}

	// The null sender: no sender lookup; the others as before.
	mustSend(t, r.addr(), "", []string{"dave@example.org"}, message("null"))
	txs := up.WaitTransactions(t, 2, 15*time.Second)
	if to := txs[1].To(); !slices.Equal(to, []string{"dave@example.org", "archive@example.net"}) {
		t.Errorf("null sender's recipients upstream %v; want dave@example.org and archive@example.net", to)
	}

	// The proxy adds no recipient: refused at start, naming the key.
	conf := opsConfig(t, bccConfig)
	_, errOut, code := runBinary(t, harness.Binary(t), "", "--as-proxy", up.Addr(), "--config", conf,
		"--interface", "127.0.0.1", "--port", fmt.Sprint(harness.FreePort(t)), "--spool-dir", t.TempDir())
	if code == 0 || !strings.Contains(errOut, "rewrite.always_bcc") || !strings.Contains(errOut, "rewrite.sender_bcc_maps") {
		t.Errorf("--as-proxy with automatic BCC: exit %d, %q; want refused, naming the keys", code, errOut)
	}
}

// TestAutomaticBCCSendmail: mail from the sendmail command gets its blind
// copies too, as Postfix's pickup mail does.
func TestAutomaticBCCSendmail(t *testing.T) {
	t.Parallel()
	names := sendmailNames(t)
	up := harness.NewFakeSMTP(t, harness.Script{})
	dir := t.TempDir()
	conf := writeFile(t, dir, "relaykeeper.toml", fmt.Sprintf("[spool]\ndir = %q\n%s", t.TempDir(), bccConfig), 0o644)
	startSendmailRelay(t, conf, up.Addr())
	if out, errOut, code := runBinary(t, filepath.Join(names, "sendmail"), "Subject: cron\n\nhello\n", "-C", conf, "-i",
		"-f", "alice@example.org", "ops@example.org"); code != 0 {
		t.Fatalf("sendmail = exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	tx := up.WaitTransactions(t, 1, 15*time.Second)[0]
	if to := tx.To(); !slices.Equal(to, []string{"ops@example.org", "alice-copy@example.net", "archive@example.net"}) {
		t.Errorf("recipients upstream %v; want ops@example.org and the two copies", to)
	}
}

// TestVirtualAliasMaps: Postfix's virtual_alias_maps, which relaykeeper
// had no key for: a recipient the table lists goes to the addresses it
// gives, each looked up again, with the client's address as ORCPT (so a
// notice names what the sender wrote); the proxy refuses the key.
func TestVirtualAliasMaps(t *testing.T) {
	t.Parallel()
	up := harness.NewFakeSMTP(t, harness.Script{Capabilities: []string{"PIPELINING", "DSN", "ENHANCEDSTATUSCODES"}})
	cfg := "[rewrite]\nvirtual_alias_maps = [\"inline:{ { ops@example.com=alice@example.net, team@example.org }, team@example.org=bob@example.org }\"]\n"
	r := opsRelay(t, up.Addr(), cfg, "--forward-on-disconnect")
	mustSend(t, r.addr(), "sender@example.org", []string{"ops@example.com", "carol@example.net"}, message("alias"))
	got := up.WaitTransactions(t, 1, 15*time.Second)[0]
	var lines []string
	for _, rc := range got.Rcpts {
		lines = append(lines, strings.TrimSpace(rc.Addr+" "+rc.Params))
	}
	want := []string{"alice@example.net ORCPT=rfc822;ops@example.com", "bob@example.org ORCPT=rfc822;ops@example.com", "carol@example.net"}
	if !slices.Equal(lines, want) {
		t.Errorf("RCPT upstream %q; want %q", lines, want)
	}
	_, errOut, code := runBinary(t, harness.Binary(t), "", "--as-proxy", up.Addr(), "--config", opsConfig(t, cfg),
		"--interface", "127.0.0.1", "--port", fmt.Sprint(harness.FreePort(t)), "--spool-dir", t.TempDir())
	if code == 0 || !strings.Contains(errOut, "rewrite.virtual_alias_maps") {
		t.Errorf("--as-proxy with virtual_alias_maps: exit %d, %q; want refused, naming the key", code, errOut)
	}
}
