package e2e

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// acc19Login connects from ip, starts TLS and answers AUTH PLAIN for user
// and pass; it returns the reply.
func acc19Login(t *testing.T, r *relay, ip, user, pass string) reply {
	t.Helper()
	c := mustDial(t, r.addr(), ip)
	defer c.Close()
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	if err := c.startTLS(); err != nil {
		t.Fatal(err)
	}
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	rep, err := c.cmd("AUTH PLAIN %s", authPlain(user, pass))
	if err != nil {
		t.Fatalf("AUTH PLAIN as %s: %v", user, err)
	}
	return rep
}

// TestAcc19AuthSecretsReload: an account removed from --server-auth's
// file (a leaked password: the administrator deletes the line and runs
// "systemctl reload relaykeeper") can no longer log in once the relay got
// SIGHUP, and an account added to the file can log in once the relay saw
// the file change, without a SIGHUP, as tables reload. A file that no
// longer loads is refused with FILE:LINE and the accounts in force stay.
func TestAcc19AuthSecretsReload(t *testing.T) {
	t.Parallel()
	r := startAuthRelay(t, plainSecrets, "")
	sec := flagValue(r.args, "--server-auth")
	if got := acc19Login(t, r, "127.0.0.21", "bob", "bobpw"); got.String() != authOK {
		t.Fatalf("bob's login before the change = %q; want %q", got, authOK)
	}

	// bob is disabled: his line goes, SIGHUP.
	if err := os.WriteFile(sec, []byte("server plain alice alice+20pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.current().Signal(syscall.SIGHUP)
	if len(waitDiag(r, 10*time.Second, "server secrets reloaded", sec)) == 0 {
		t.Errorf("no \"server secrets reloaded\" line naming %s after SIGHUP; stderr:\n%s", sec, r.stderr())
	}
	if got := acc19Login(t, r, "127.0.0.22", "bob", "bobpw"); got.String() != authFailed {
		t.Errorf("bob's login after his line was removed and SIGHUP = %q; want %q", got, authFailed)
	}
	if got := acc19Login(t, r, "127.0.0.23", "alice", "alice pw"); got.String() != authOK {
		t.Errorf("alice's login after the reload = %q; want %q", got, authOK)
	}

	// carol is added; no SIGHUP: the file's change is seen within the
	// tables' 5 s check.
	if err := os.WriteFile(sec, []byte("server plain alice alice+20pw\nserver plain carol carolpw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var got reply
	for i := 0; i < 15; i++ {
		// Each try from an address of its own, so that the failures
		// before the change is seen meet no throttle.
		if got = acc19Login(t, r, fmt.Sprintf("127.0.0.%d", 30+i), "carol", "carolpw"); got.String() == authOK {
			break
		}
		time.Sleep(time.Second)
	}
	if got.String() != authOK {
		t.Errorf("carol's login after her line was added = %q; want %q", got, authOK)
	}

	// A bad line: the file is refused, with its place, and carol stays.
	if err := os.WriteFile(sec, []byte("server plain alice alice+20pw\nserver nonsense carol\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.current().Signal(syscall.SIGHUP)
	if len(waitDiag(r, 10*time.Second, "server secrets not reloaded", sec+":2")) == 0 {
		t.Errorf("no \"server secrets not reloaded\" error naming %s:2; stderr:\n%s", sec, r.stderr())
	}
	if got := acc19Login(t, r, "127.0.0.25", "carol", "carolpw"); got.String() != authOK {
		t.Errorf("carol's login after a bad file was refused = %q; want %q (the old accounts stay in force)", got, authOK)
	}
	if strings.Contains(r.stderr(), "carolpw") {
		t.Errorf("the log shows a password")
	}
}

// TestAcc19AuthenticatedHeader: Postfix's smtpd_sasl_authenticated_header
// ([auth] authenticated_header = true) names the login in the Received
// header, after the TLS comment, as Postfix writes it; by default (as in
// Postfix) the login is not shown to the recipients.
func TestAcc19AuthenticatedHeader(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		r := startAuthRelay(t, plainSecrets, fmt.Sprintf("[auth]\nauthenticated_header = %v\n", on))
		c := loginTLS(t, r.addr(), "127.0.0.26", "alice", "alice pw", authOK)
		tx, err := c.send("alice@example.org", []string{outsideRcpt}, message("authenticated header"))
		if err != nil {
			t.Fatalf("send after login: %v; transaction %+v", err, tx)
		}
		b, err := os.ReadFile(filepath.Join(r.spool, queuedID(t, tx.Final)+".content"))
		if err != nil {
			t.Fatal(err)
		}
		hdr, _, _ := strings.Cut(string(b), "\r\n\tby relay.test")
		if got := strings.Contains(hdr, "\r\n\t(Authenticated sender: alice)"); got != on {
			t.Errorf("authenticated_header = %v: Received header\n%s\nnames the login: %v; want %v", on, hdr, got, on)
		}
		if on && !regexp.MustCompile(`\r\n\t\(using TLS[^\r]*\)\r\n\t\(Authenticated sender: alice\)$`).MatchString(hdr) {
			t.Errorf("Received header\n%q\nwant the TLS comment, then (Authenticated sender: alice), then \"by\", as Postfix writes them", hdr)
		}
	}
}

// acc19POPLogin says USER and PASS to the POP3 server at addr from ip and
// returns the reply to PASS (or to USER, if that was refused).
func acc19POPLogin(t *testing.T, addr, ip, user, pass string) string {
	t.Helper()
	c, err := dialPlain(addr, ip)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatalf("POP3 greeting: %v", err)
	}
	fmt.Fprintf(c, "USER %s\r\n", user)
	l, _ := br.ReadString('\n')
	if strings.HasPrefix(l, "+OK") {
		fmt.Fprintf(c, "PASS %s\r\n", pass)
		l, _ = br.ReadString('\n')
	}
	return strings.TrimSpace(l)
}

// TestAcc19POPSecretsReload: the same for --pop-auth: a mailbox whose line
// is removed cannot be read once the relay got SIGHUP.
func TestAcc19POPSecretsReload(t *testing.T) {
	t.Parallel()
	sec := writeFile(t, t.TempDir(), "pop.auth", "server plain alice s3cret\nserver plain bob bobpw\n", 0o600)
	popPort := harness.FreePort(t)
	r := startRelay(t, "127.0.0.1", "--as-server", "--pop", "--pop-port", fmt.Sprint(popPort), "--pop-auth", sec,
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	addr := fmt.Sprintf("127.0.0.1:%d", popPort)
	harness.WaitPort(t, addr, 5*time.Second)
	if got := acc19POPLogin(t, addr, "127.0.0.41", "bob", "bobpw"); !strings.HasPrefix(got, "+OK") {
		t.Fatalf("bob's POP3 login before the change = %q; want +OK", got)
	}
	if err := os.WriteFile(sec, []byte("server plain alice s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.current().Signal(syscall.SIGHUP)
	if len(waitDiag(r, 10*time.Second, "server secrets reloaded", sec)) == 0 {
		t.Errorf("no \"server secrets reloaded\" line naming %s after SIGHUP; stderr:\n%s", sec, r.stderr())
	}
	if got := acc19POPLogin(t, addr, "127.0.0.42", "bob", "bobpw"); !strings.HasPrefix(got, "-ERR") {
		t.Errorf("bob's POP3 login after his line was removed and SIGHUP = %q; want -ERR", got)
	}
	if got := acc19POPLogin(t, addr, "127.0.0.43", "alice", "s3cret"); !strings.HasPrefix(got, "+OK") {
		t.Errorf("alice's POP3 login after the reload = %q; want +OK", got)
	}
}
