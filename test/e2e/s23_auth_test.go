package e2e

import "testing"

// TestS23AuthThrottleOneAccountCannotReset: whoever holds one account could
// guess at another's password without limit: a right login cleared the
// address's whole count of failures, so two guesses at bob, then a login as
// alice, then two more guesses, and so on, never met failure_limit = 3.
// A right login now forgets only that user's own failures (a mistyped
// password); the others stay until the window passes.
func TestS23AuthThrottleOneAccountCannotReset(t *testing.T) {
	t.Parallel()
	r := startAuthRelay(t, plainSecrets, "[auth]\nfailure_limit = 3\nfailure_window = \"10m\"\n")
	// alice's own typos are forgotten when she logs in.
	c := loginTLS(t, r.addr(), "127.0.0.31", "alice", "typo1", authFailed)
	mustCmd(t, c, authFailed, "AUTH PLAIN %s", authPlain("alice", "typo2"))
	mustCmd(t, c, authOK, "AUTH PLAIN %s", authPlain("alice", "alice pw"))
	c.Close()
	c = loginTLS(t, r.addr(), "127.0.0.31", "alice", "typo3", authFailed)
	mustCmd(t, c, authFailed, "AUTH PLAIN %s", authPlain("alice", "typo4"))
	mustCmd(t, c, authOK, "AUTH PLAIN %s", authPlain("alice", "alice pw"))
	c.Close()

	// Guesses at bob between alice's logins are counted.
	c = loginTLS(t, r.addr(), "127.0.0.32", "bob", "guess1", authFailed)
	mustCmd(t, c, authFailed, "AUTH PLAIN %s", authPlain("bob", "guess2"))
	mustCmd(t, c, authOK, "AUTH PLAIN %s", authPlain("alice", "alice pw"))
	c.Close()
	c = loginTLS(t, r.addr(), "127.0.0.32", "bob", "guess3", authFailed)
	mustCmd(t, c, authThrottle, "AUTH PLAIN %s", authPlain("bob", "guess4"))
	c.Close()
}
