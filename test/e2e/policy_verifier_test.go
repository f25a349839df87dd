package e2e

import (
	"errors"
	"io"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// verifierScript answers E-MailRelay's address-verifier protocol by the
// recipient's local part ($1 is the recipient): exit 0 local, 1 remote
// with a rewritten address on line 2, 2 reject, 3 temporary failure, 100
// drop the connection; "hang" never answers (its child sleep must die
// with it).
const verifierScript = `#!/bin/sh
case "$1" in
local@*)    echo "Local User"; echo "localbox"; exit 0 ;;
remote@*)   echo "remote"; echo "rewritten@elsewhere.example"; exit 1 ;;
reject@*)   echo "no such user here"; exit 2 ;;
tempfail@*) echo "mailbox busy, try later"; exit 3 ;;
drop@*)     exit 100 ;;
hang@*)     sleep 30; exit 0 ;;
esac
echo "unexpected $1" >&2
exit 2
`

// TestVerifierExitCodes: --address-verifier with a shell script: exit 0
// and 1 accept (1 with the rewritten address in the spooled envelope), 2
// is a 550 with the script's text, 3 a 450, 100 drops the connection, and
// a script that hangs is cut at verifier_timeout (1 s) with a 450.
func TestVerifierExitCodes(t *testing.T) {
	t.Parallel()
	script := writeFile(t, t.TempDir(), "verify.sh", verifierScript, 0o755)
	r := startPolicyRelay(t, "[policy]\nverifier_timeout = \"1s\"\n", "--address-verifier", script)

	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<sender@example.org>")
	mustCmd(t, c, "250 2.1.5 Ok", "RCPT TO:<local@example.net>")
	mustCmd(t, c, "250 2.1.5 Ok", "RCPT TO:<remote@example.net>")
	for _, x := range []struct{ rcpt, want string }{
		{"reject@example.net", "550 5.1.1 no such user here"},
		{"tempfail@example.net", "450 4.3.0 mailbox busy, try later"},
	} {
		rep := mustCmd(t, c, x.want, "RCPT TO:<%s>", x.rcpt)
		checkRejectLogged(t, r, "rcpt", x.rcpt, rep)
	}
	start := time.Now()
	rep := mustCmd(t, c, "450 4.3.0 address verifier unavailable; try again later", "RCPT TO:<hang@example.net>")
	if d := time.Since(start); d > 4*time.Second {
		t.Errorf("a hanging verifier held RCPT for %v; want about verifier_timeout (1s)", d)
	}
	checkRejectLogged(t, r, "rcpt", "hang@example.net", rep)
	mustCmd(t, c, "354", "DATA")
	c.conn.Write([]byte("Subject: verified\r\n\r\nbody\r\n.\r\n"))
	final, err := c.read()
	if err != nil {
		t.Fatal(err)
	}
	id := queuedID(t, final)
	env := readEnvelope(t, filepath.Join(r.spool, id+".envelope"))
	if got, want := env.all("X-MailRelay-To-Remote"), []string{"local@example.net", "rewritten@elsewhere.example"}; !slices.Equal(got, want) {
		t.Errorf("spooled recipients = %q; want %q (exit 1's line 2 replaces the address)\n%s", got, want, env)
	}

	// Exit 100: the connection is dropped, no reply.
	d := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, d, "250", "EHLO client.e2e.test")
	mustCmd(t, d, "250", "MAIL FROM:<sender@example.org>")
	rep, err = d.cmd("RCPT TO:<drop@example.net>")
	if !errors.Is(err, io.EOF) {
		t.Errorf("RCPT TO:<drop@example.net> = %q, %v; want the connection closed without a reply (EOF)", rep, err)
	}
	client := d.conn.LocalAddr().String()
	var es []*maillog.Entry
	waitFor(5*time.Second, func() bool { es = clientRejects(r, client); return len(es) > 0 })
	if len(es) != 1 || es[0].Get("rule") != "address_verifier" || es[0].Get("to") != "<drop@example.net>" {
		t.Errorf("reject lines for the dropped client %s: %v; want one with to=<drop@example.net> rule=address_verifier", client, fields(es))
	}
	r.waitEvent("disconnect", 5*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == client })
}

// seedVerifierScript is the E-MailRelay user guide's "only local users"
// verifier: local recipients (of relay.example) are accepted from anyone;
// others only for a client that logged in (mechanism, $5, not "none"). It
// records its auth id argument ($6).
const seedVerifierScript = `#!/bin/sh
echo "$6" >> "$(dirname "$0")/authids"
case "$1" in
*@relay.example) echo "Local"; echo "$1"; exit 0 ;;
esac
if [ "$5" = "none" ]; then echo "no relaying for $6"; exit 2; fi
echo; echo "$1"; exit 1
`

// TestSeedVerifierAnyoneLocal is the E-MailRelay user guide's set-up (seed
// 001, "Preventing open mail relay"), as written: --server-auth with a
// "NONE server *.*.*.* x" line, so that nobody needs to log in, and an
// address verifier (--verifier) that refuses remote recipients to clients
// that did not log in. Anyone may send to local users; only a login
// relays; the verifier hears the line's keyword x as the auth id.
func TestSeedVerifierAnyoneLocal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	script := writeFile(t, dir, "verify.sh", seedVerifierScript, 0o755)
	r := startAuthRelay(t, "NONE server *.*.*.* x\nserver plain alice alicepw\n", "", "--verifier", script)
	c := mustDial(t, r.addr(), "127.0.0.2")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<sender@example.org>")
	mustCmd(t, c, "250 2.1.5 Ok", "RCPT TO:<user@relay.example>")
	mustCmd(t, c, "550 5.1.1 no relaying for x", "RCPT TO:<%s>", outsideRcpt)
	c.Close()
	c = loginTLS(t, r.addr(), "127.0.0.2", "alice", "alicepw", "235")
	mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
	mustCmd(t, c, "250 2.1.5 Ok", "RCPT TO:<%s>", outsideRcpt)
	c.Close()
}
