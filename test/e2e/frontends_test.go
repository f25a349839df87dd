package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestPOP3WithPoplib is the guide's "emailrelay --as-server --pop
// --pop-auth FILE": messages stored by SMTP are read and deleted by a real
// POP3 client (Python's poplib).
func TestPOP3WithPoplib(t *testing.T) {
	t.Parallel()
	harness.Need(t, "python3") // for poplib
	secrets := writeFile(t, t.TempDir(), "pop.auth", "server plain alice s3cret\n", 0o600)
	spool := t.TempDir()
	popPort := harness.FreePort(t)
	r := startRelay(t, "127.0.0.1", "--as-server", "--pop", "--pop-port", fmt.Sprint(popPort), "--pop-auth", secrets,
		"--interface", "127.0.0.1", "--interface", fmt.Sprintf("pop=127.0.0.1:%d", popPort), "--spool-dir", spool)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("first"))
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("second"))
	harness.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", popPort), 5*time.Second)
	py := fmt.Sprintf(`
import poplib
p = poplib.POP3("127.0.0.1", %d, timeout=10)
p.user("alice"); p.pass_("s3cret")
n, _ = p.stat()
print("count", n)
for i in range(1, n+1):
    lines = p.retr(i)[1]
    print("subject", [l.decode() for l in lines if l.startswith(b"Subject:")][0])
    p.dele(i)
p.quit()
`, popPort)
	out, err := exec.Command("python3", "-c", py).CombinedOutput()
	if err != nil {
		t.Fatalf("poplib: %v\n%s", err, out)
	}
	got := string(out)
	if !strings.Contains(got, "count 2") || !strings.Contains(got, "subject Subject: first") || !strings.Contains(got, "subject Subject: second") {
		t.Errorf("poplib session printed:\n%s", got)
	}
	if ids := messageIDs(t, spool); len(ids) != 0 {
		t.Errorf("spool holds %v after DELE and QUIT; want nothing", ids)
	}
}

// TestAdminFlushAndNotify: E-MailRelay's admin interface: "flush" forwards
// the stored mail and answers only when done; "notify" streams events.
func TestAdminFlushAndNotify(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	r, adminPort := adminRelay(t, sink.Addr())

	watch, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	fmt.Fprintf(watch, "notify\r\n")
	time.Sleep(200 * time.Millisecond)

	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("flush me"))
	if n := len(sink.Transactions()); n != 0 {
		t.Fatalf("forwarded before flush: %d", n)
	}
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	fmt.Fprintf(c, "flush\r\n")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil || !strings.HasPrefix(strings.TrimSpace(strings.TrimPrefix(line, "E-MailRelay> ")), "OK") {
		t.Fatalf("flush answered %q, %v; want OK", line, err)
	}
	if n := len(sink.Transactions()); n != 1 {
		t.Errorf("after flush the smarthost saw %d transactions; want 1", n)
	}
	watch.SetDeadline(time.Now().Add(5 * time.Second))
	sc := bufio.NewScanner(watch)
	sawAccept, sawSent := false, false
	for sc.Scan() && !(sawAccept && sawSent) {
		l := sc.Text()
		sawAccept = sawAccept || strings.Contains(l, " accept id=")
		sawSent = sawSent || strings.Contains(l, " delivery id=") && strings.Contains(l, "result=sent")
	}
	if !sawAccept || !sawSent {
		t.Errorf("notify session saw accept %v, sent %v; want both", sawAccept, sawSent)
	}
}

// TestAdminSMTPDisable: "smtp disable" makes new SMTP sessions hear 421
// while the admin session goes on; "smtp enable" lets them in again.
func TestAdminSMTPDisable(t *testing.T) {
	t.Parallel()
	adminPort := harness.FreePort(t)
	r := startRelay(t, "127.0.0.1", "--as-server", "--admin", fmt.Sprint(adminPort), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	harness.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", adminPort), 5*time.Second)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	c.SetDeadline(time.Now().Add(10 * time.Second))
	greeting := func() string {
		s, err := net.Dial("tcp", r.addr())
		if err != nil {
			return err.Error()
		}
		defer s.Close()
		s.SetDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(s).ReadString('\n')
		return strings.TrimSpace(line)
	}
	fmt.Fprintf(c, "smtp disable\r\n")
	br.ReadString('\n')
	if g := greeting(); !strings.HasPrefix(g, "421 4.3.2 ") {
		t.Errorf("greeting while disabled = %q; want 421 4.3.2", g)
	}
	fmt.Fprintf(c, "smtp enable\r\n")
	br.ReadString('\n')
	if g := greeting(); !strings.HasPrefix(g, "220 ") {
		t.Errorf("greeting after enable = %q; want 220", g)
	}
}
