package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// adminLine sends one admin command and returns its first reply line.
func adminLine(t *testing.T, port int, cmd string) string {
	t.Helper()
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(c, "%s\r\n", cmd)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("admin %q: %v", cmd, err)
	}
	return strings.TrimSpace(line)
}

// adminRelay starts a relay forwarding to upstream with the admin
// interface (--admin) on a port of its own, and waits for that port.
func adminRelay(t *testing.T, upstream string, extra ...string) (r *relay, adminPort int) {
	t.Helper()
	adminPort = harness.FreePort(t)
	r = startRelay(t, "127.0.0.1", append([]string{"--as-server", "--forward-to", upstream, "--admin", fmt.Sprint(adminPort),
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir()}, extra...)...)
	harness.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", adminPort), 5*time.Second)
	return r, adminPort
}

// TestOnDemandForwarding: a store-and-forward relay with a smarthost and no
// --poll keeps the mail until told to forward it, as E-MailRelay's does:
// the admin's "forward" forwards it.
func TestOnDemandForwarding(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	r, adminPort := adminRelay(t, sink.Addr(), "--no-bounces")

	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("later"))
	time.Sleep(time.Second)
	if n := len(sink.Transactions()); n != 0 {
		t.Fatalf("the smarthost saw %d transactions before anything asked for forwarding; want 0", n)
	}
	if got := adminLine(t, adminPort, "forward"); got != "OK" {
		t.Fatalf("admin forward = %q; want OK", got)
	}
	sink.WaitTransactions(t, 1, 10*time.Second)
}

// TestClientFilterStopScanning: a client filter's exit 102 ends the
// forwarding run after its message, E-MailRelay's way to forward one
// message per poll ("--client-filter=exit:102"): each admin forward, and
// each --as-client run, forwards one message.
func TestClientFilterStopScanning(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	adminPort := harness.FreePort(t)
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--admin", fmt.Sprint(adminPort),
		"--client-filter", "exit:102", "--no-bounces", "--interface", "127.0.0.1", "--spool-dir", spool)
	harness.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", adminPort), 5*time.Second)
	for i := range 4 {
		mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message(fmt.Sprint("one of four ", i)))
	}
	for want := 1; want <= 2; want++ {
		if got := adminLine(t, adminPort, "forward"); got != "OK" {
			t.Fatalf("admin forward = %q; want OK", got)
		}
		sink.WaitTransactions(t, want, 10*time.Second)
		time.Sleep(time.Second)
		if n := len(sink.Transactions()); n != want {
			t.Fatalf("after forward number %d the smarthost saw %d transactions; want %d", want, n, want)
		}
	}
	r.stop(10 * time.Second)

	p := harness.Start(t, harness.Binary(t), "--as-client", sink.Addr(), "--client-filter", "exit:102", "--no-bounces",
		"--spool-dir", spool)
	p.Wait(30 * time.Second)
	if n := len(sink.Transactions()); n != 3 {
		t.Errorf("after --as-client the smarthost saw %d transactions; want 3 (one more)", n)
	}
	if n := len(messageIDs(t, spool)); n != 1 {
		t.Errorf("the spool holds %d messages; want 1 left", n)
	}
}

// TestClientFilterInProxyMode: --client-filter works with --as-proxy, as in
// E-MailRelay, whose proxy forwards through a client that runs it: it may
// edit the message on its way upstream, and its refusal is what the
// sending client hears. (It was skipped without a word.)
func TestClientFilterInProxyMode(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	cf := script(t, "cf", `grep -q 'Subject: refuse' "$1" && { echo '<<554 5.7.1 not through here>>'; exit 1; }
grep -q 'Subject: later' "$1" && exit 100
{ printf 'X-Client-Filtered: yes\r\n'; cat "$1"; } > "$1.tmp" && mv "$1.tmp" "$1"`+"\n")
	r := startRelay(t, "127.0.0.1", "--as-proxy", sink.Addr(), "--client-filter", cf,
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("edited"))
	tx := sink.WaitTransactions(t, 1, 10*time.Second)[0]
	if !strings.HasPrefix(string(tx.Data), "X-Client-Filtered: yes\r\n") {
		t.Errorf("the smarthost got %q...; want the client filter's header first", head(string(tx.Data)))
	}
	got, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, message("refuse"))
	if err == nil || got.Final.String() != "554 5.7.1 not through here" {
		t.Errorf("a message the client filter refuses: %v, final reply %q; want 554 5.7.1 not through here", err, got.Final)
	}
	got, err = sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, message("later"))
	if err == nil || got.Final.code() != 451 {
		t.Errorf("a message the client filter abandons: %v, final reply %q; want 451 (nothing kept, try later)", err, got.Final)
	}
	for _, tx := range sink.Transactions()[1:] {
		if tx.Reply != "" {
			t.Errorf("the smarthost got a message it should not have: %q", tx.Data)
		}
	}
}

// TestSeedPOPSecretsFile is the E-MailRelay guide's POP server, "emailrelay
// --as-server --pop --pop-auth /etc/emailrelay.auth", with the guide's
// secrets file ("APOP server user1 password1"), which was refused at start.
func TestSeedPOPSecretsFile(t *testing.T) {
	t.Parallel()
	harness.Need(t, "python3") // for poplib
	secrets := writeFile(t, t.TempDir(), "emailrelay.auth", "APOP server user1 password1\nAPOP server user2 password2\n", 0o600)
	popPort := harness.FreePort(t)
	r := startRelay(t, "127.0.0.1", "--as-server", "--pop", "--pop-port", fmt.Sprint(popPort), "--pop-auth", secrets,
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("for pop"))
	harness.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", popPort), 5*time.Second)
	py := fmt.Sprintf(`
import poplib
p = poplib.POP3("127.0.0.1", %d, timeout=10)
p.apop("user1", "password1")
print("count", p.stat()[0])
p.quit()
p = poplib.POP3("127.0.0.1", %d, timeout=10)
p.user("user2"); p.pass_("password2")
print("count", p.stat()[0])
p.quit()
`, popPort, popPort)
	out, err := exec.Command("python3", "-c", py).CombinedOutput()
	if err != nil || strings.Count(string(out), "count 1") != 2 {
		t.Errorf("poplib with the guide's secrets: %v\n%s", err, out)
	}
}

// TestClientFilterReasonLogged: the second <<...>> line of a client filter
// that refuses is the reason for the logs, as docs/filters.md says; it
// was dropped.
func TestClientFilterReasonLogged(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	no := script(t, "no", "echo '<<550 5.7.1 not from here>>'; echo '[[rule 42 matched]]'; exit 1\n")
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--no-bounces",
		"--client-filter", no, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("held back"))
	r.waitEvent("delivery", 10*time.Second, nil)
	if !waitFor(5*time.Second, func() bool { return strings.Contains(r.stderr(), "rule 42 matched") }) {
		t.Errorf("the log does not have the client filter's reason; stderr:\n%s", r.stderr())
	}
}

// TestFilterBreaksEnvelope: a server filter that passes the message but
// leaves an envelope that does not parse (emptied, or garbage) gets the
// client a temporary failure; the relay accepted such a message with 250
// and then never forwarded it (quarantined at the next start).
func TestFilterBreaksEnvelope(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	breaks := script(t, "breaks", `grep -q 'Subject: empty' "$1" && : > "$2"
grep -q 'Subject: garbage' "$1" && echo 'not an envelope' > "$2"
exit 0`+"\n")
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--poll", "1", "--no-bounces",
		"--filter", breaks, "--interface", "127.0.0.1", "--spool-dir", spool)
	for _, subject := range []string{"empty", "garbage"} {
		tx, err := sendMail(r.addr(), "alice@example.org", []string{"bob@example.net"}, message(subject))
		if err == nil || tx.Final.code() != 451 {
			t.Errorf("a message whose envelope the filter broke (%s): %v, final reply %q; want 451", subject, err, tx.Final)
		}
	}
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("fine"))
	sink.WaitTransactions(t, 1, 10*time.Second)
	if !waitFor(5*time.Second, func() bool { return len(messageIDs(t, spool)) == 0 }) {
		t.Errorf("the spool holds %v; want nothing", messageIDs(t, spool))
	}
}

// TestFilterTakesMessage: a server filter that moves the message's files
// away and exits 100 (abandon) has taken it, as the guide's --pop-by-name
// filters do: the client hears 250. It heard 452 "Insufficient system
// storage", and sent the message again and again, a copy taken each time.
// A filter that removes the files but exits 0 has taken it too (with a
// warning), never a storage error.
func TestFilterTakesMessage(t *testing.T) {
	t.Parallel()
	box := t.TempDir()
	take := script(t, "take", `grep -q 'Subject: take' "$1" || { rm -f "$1" "$2"; exit 0; }
mv "$1" "`+box+`/" && mv "$2" "`+box+`/" && exit 100`+"\n")
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--filter", take, "--interface", "127.0.0.1", "--spool-dir", spool)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("take"))
	if n := len(messageIDs(t, box)); n != 1 {
		t.Errorf("the filter's box holds %d messages; want 1", n)
	}
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("remove"))
	if n := len(messageIDs(t, spool)); n != 0 {
		t.Errorf("the spool holds %d messages; want none", n)
	}
	if strings.Contains(r.stderr(), "spool write failed") || !strings.Contains(r.stderr(), "taken as abandoned") {
		t.Errorf("the log blames the spool, or does not warn of a filter that took a message with exit 0:\n%s", r.stderr())
	}
}

// TestClientFilterTakesMessage: a client filter that moves the message's
// files away and exits 100 has taken it: the relay forgets it. It logged
// an error and wrote the envelope back, an orphan without content.
func TestClientFilterTakesMessage(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	box := t.TempDir()
	take := script(t, "take", `mv "$1" "`+box+`/" && mv "$2" "`+box+`/" && exit 100`+"\n")
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--no-bounces",
		"--client-filter", take, "--interface", "127.0.0.1", "--spool-dir", spool)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("taken"))
	if !waitFor(10*time.Second, func() bool { return len(messageIDs(t, box)) == 1 }) {
		t.Fatalf("the filter's box holds %d messages; want 1", len(messageIDs(t, box)))
	}
	time.Sleep(time.Second)
	if fs, _ := filepath.Glob(filepath.Join(spool, "*.envelope*")); len(fs) != 0 {
		t.Errorf("the spool holds %v; want nothing", fs)
	}
	if strings.Contains(r.stderr(), "level=ERROR") {
		t.Errorf("errors logged:\n%s", r.stderr())
	}
}
