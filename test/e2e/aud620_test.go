package e2e

import (
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestAud620CrashingVerifierIsNoOpenRelay: the user guide keeps strangers
// from relaying with "an address verifier script which rejects remote
// recipient addresses if the client has not authenticated". A Python
// verifier that crashes (here: its LDAP lookup fails with an uncaught
// exception) exits 1 with its traceback on standard error and nothing on
// standard output; exit 1 is also "valid remote recipient", and relaykeeper
// took it as one, so every recipient was relayed while the verifier was
// broken. It is a verifier failure now: 450, and the message is not
// accepted.
func TestAud620CrashingVerifierIsNoOpenRelay(t *testing.T) {
	t.Parallel()
	harness.Need(t, "python3")
	script := writeFile(t, t.TempDir(), "ldap-verify.py", `#!/usr/bin/env python3
import sys
def lookup(address):
    raise ConnectionError("ldap://ldap.example.net: server down")
if sys.argv[5] == "none":
    print("", flush=True)
    print(lookup(sys.argv[1]))
    sys.exit(1)
print("x")
print(sys.argv[1])
sys.exit(1)
`, 0o755)
	r := startPolicyRelay(t, "", "--address-verifier", script)
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO stranger.e2e.test")
	mustCmd(t, c, "250", "MAIL FROM:<spammer@example.org>")
	rep := mustCmd(t, c, "450 4.3.0 address verifier unavailable; try again later", "RCPT TO:<victim@elsewhere.example>")
	checkRejectLogged(t, r, "rcpt", "victim@elsewhere.example", rep)
	mustCmd(t, c, "554", "DATA")
}
