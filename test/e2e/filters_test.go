package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

func script(t *testing.T, name, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFilterAddsigProxy is the E-MailRelay guide's
// "emailrelay --as-proxy smarthost:smtp --filter /usr/local/bin/addsig":
// the filter appends a signature (by renaming a new file over the content,
// as the guide's scripts do) and the smarthost gets the signed message.
func TestFilterAddsigProxy(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	addsig := script(t, "addsig", `printf -- '-- \r\nsent through relaykeeper\r\n' | cat "$1" - > "$1.tmp" && mv "$1.tmp" "$1"`+"\n")
	r := startRelay(t, "127.0.0.1", "--as-proxy", sink.Addr(), "--filter", addsig,
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("signed"))
	tx := sink.WaitTransactions(t, 1, 10*time.Second)[0]
	if !strings.HasSuffix(string(tx.Data), "-- \r\nsent through relaykeeper\r\n") {
		t.Errorf("the smarthost got %q; want it to end with the signature", tail(string(tx.Data)))
	}
}

// TestFilterRejectsAndChains: a filter's exit code and <<text>> are what the
// client hears; nothing is kept; a chain stops at the first refusal.
func TestFilterRejectsAndChains(t *testing.T) {
	t.Parallel()
	ok := script(t, "ok", "exit 0\n")
	no := script(t, "no", `grep -q 'Subject: spam' "$1" && { echo '<<550 5.7.1 no spam here>>'; exit 1; }; exit 0`+"\n")
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--filter", ok, "--filter", no, "--interface", "127.0.0.1", "--spool-dir", spool)
	tx, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, message("spam"))
	if err == nil || tx.Final.String() != "550 5.7.1 no spam here" {
		t.Errorf("spam through the filter: %v, final reply %q; want 550 5.7.1 no spam here", err, tx.Final)
	}
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("ham"))
	if got := len(messageIDs(t, spool)); got != 1 {
		t.Errorf("spool holds %d messages; want only the clean one", got)
	}
}

// TestFilterChainedRelays is the guide's two relays:
//
//	emailrelay --as-server --spool-dir /tmp/spool-in --poll 1 --forward-to localhost:10025
//	emailrelay --as-server --spool-dir /tmp/spool-out --port 10025 --filter /tmp/myspamfilter
func TestFilterChainedRelays(t *testing.T) {
	t.Parallel()
	myspamfilter := script(t, "myspamfilter", `grep -q 'Subject: spam' "$1" && { echo '<<spam>>'; exit 1; }; exit 0`+"\n")
	out := startRelay(t, "127.0.0.1", "--as-server", "--spool-dir", t.TempDir(), "--filter", myspamfilter, "--interface", "127.0.0.1")
	in := startRelay(t, "127.0.0.1", "--as-server", "--spool-dir", t.TempDir(), "--poll", "1", "--no-bounces",
		"--forward-to", out.addr(), "--interface", "127.0.0.1")
	mustSend(t, in.addr(), "alice@example.org", []string{"bob@example.net"}, message("ham"))
	mustSend(t, in.addr(), "alice@example.org", []string{"bob@example.net"}, message("spam"))
	if !waitFor(10*time.Second, func() bool { return len(messageIDs(t, out.spool)) == 1 && len(in.events("delivery")) == 2 }) {
		t.Fatalf("after 10s: spool-out has %d messages, spool-in logged %d deliveries; want 1 and 2",
			len(messageIDs(t, out.spool)), len(in.events("delivery")))
	}
	for _, e := range in.events("delivery") {
		if strings.Contains(e.Get("reply"), "spam") && e.Get("result") != "bounced" {
			t.Errorf("the spam's delivery line = %v; want bounced by the second relay's filter", e.Fields)
		}
	}
}

// TestClientFilterRefuses: --client-filter runs before forwarding; a
// refusal fails the message with the filter's text and nothing is sent.
func TestClientFilterRefuses(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	no := script(t, "no", "echo '[[not from here]]'; exit 1\n")
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--no-bounces",
		"--client-filter", no, "--interface", "127.0.0.1", "--spool-dir", spool)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("held back"))
	e := r.waitEvent("delivery", 10*time.Second, nil)
	if e.Get("result") != "bounced" || !strings.Contains(e.Get("reply"), "not from here") {
		t.Errorf("delivery line = %v; want bounced with the filter's text", e.Fields)
	}
	if n := len(sink.Transactions()); n != 0 {
		t.Errorf("the smarthost saw %d transactions; want none", n)
	}
}

func tail(s string) string {
	if len(s) > 80 {
		return s[len(s)-80:]
	}
	return s
}

// messageIDs lists the spool's message ids (envelopes in any state).
func messageIDs(t *testing.T, dir string) []string {
	t.Helper()
	des, _ := os.ReadDir(dir)
	var out []string
	for _, d := range des {
		if id, ok := strings.CutSuffix(d.Name(), ".content"); ok {
			out = append(out, id)
		}
	}
	return out
}
