package e2e

import (
	"testing"
)

// TestRev19aRecoverUnreadableClaim: as TestDur19RecoverUnreadableEnvelope,
// but the message was being delivered when the relay died: its envelope
// is a stale claim (.envelope.busy). Recovery cannot open it once (EIO)
// and leaves it in place "for the forwarders to try again"; but the
// forwarders take only ready messages, so the acknowledged message waited,
// claimed by nobody, until the next start. The running relay must deliver
// it.
func TestRev19aRecoverUnreadableClaim(t *testing.T) {
	t.Parallel()
	u := startUnreadableEnvelope(t, "dur19-rev19a-claim", ".busy")
	defer u.kill()
	checkDelivered(t, u.s, u.up, u.spool)
	if t.Failed() {
		t.Logf("stderr:\n%s", lastLines(u.traced.stderr(), 30))
	}
}
