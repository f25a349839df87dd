package e2e

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
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
