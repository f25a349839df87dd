package e2e

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestS19ClientAuthRotated: the smarthost's password rotated in
// --client-auth's file (a new Gmail app password, then "systemctl reload
// relaykeeper") is the one the next session sends (a session already open keeps its login, as the server does); the relay read the
// file only at start and went on sending the revoked password, every
// message deferred until a restart. A file that no longer loads is
// refused with FILE:LINE and the login in force stays.
func TestS19ClientAuthRotated(t *testing.T) {
	t.Parallel()
	up := newRawUpstream(t)
	up.authOK = true
	up.dotClose = true // each message a session of its own: a parked one keeps its login
	up.ehlo = func(int) []string { return []string{"PIPELINING", "AUTH PLAIN"} }
	sec := writeFile(t, t.TempDir(), "client.secrets", "client plain me@rk.test old-pw\n", 0o600)
	// A smarthost on 127.0.0.1 with no TLS switch gets the login
	// without TLS (docs/tls.md).
	r := opsRelay(t, up.addr(), "", "--forward-on-disconnect", "--client-auth", sec)
	sent := func(from string) []string {
		t.Helper()
		mustSend(t, r.addr(), from, []string{"rcpt@example.net"}, "Subject: s19\r\n\r\nrotated\r\n")
		var creds []string
		waitFor(15*time.Second, func() bool {
			var ok bool
			creds, ok = plainLogins(up)[from]
			return ok
		})
		return creds
	}
	if got := sent("first@example.org"); strings.Join(got, " ") != "me@rk.test old-pw" {
		t.Fatalf("first message sent under %q; want me@rk.test old-pw", got)
	}

	if err := os.WriteFile(sec, []byte("client plain me@rk.test new-pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.current().Signal(syscall.SIGHUP)
	if len(waitDiag(r, 10*time.Second, "client secrets reloaded", sec)) == 0 {
		t.Errorf("no \"client secrets reloaded\" line naming %s after SIGHUP; stderr:\n%s", sec, r.stderr())
	}
	if got := sent("second@example.org"); strings.Join(got, " ") != "me@rk.test new-pw" {
		t.Errorf("after the password was rotated and SIGHUP, sent under %q; want me@rk.test new-pw", got)
	}

	if err := os.WriteFile(sec, []byte("client plain me@rk.test newer-pw\nclient nonsense\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	r.current().Signal(syscall.SIGHUP)
	if len(waitDiag(r, 10*time.Second, "client secrets not reloaded", sec+":2")) == 0 {
		t.Errorf("no \"client secrets not reloaded\" error naming %s:2; stderr:\n%s", sec, r.stderr())
	}
	if got := sent("third@example.org"); strings.Join(got, " ") != "me@rk.test new-pw" {
		t.Errorf("after a bad file was refused, sent under %q; want me@rk.test new-pw still in force", got)
	}
}
