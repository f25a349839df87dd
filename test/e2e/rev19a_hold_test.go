package e2e

import "testing"

// TestRev19aBanHoldsPacedMessage: as TestRep19BanHoldsDeferredMessage,
// but the claimed message's own refusal is one of Gmail's pace replies
// ("receiving mail at a rate that prevents ..."), not a plain deferral.
// Its client was banned while it was in delivery: it must be held, not
// sent at its next retry. The scheduler cleared Outcome.Hold for every
// pace or alert verdict, and the enforcer had forgotten the pending hold
// when it answered, so nothing held it.
func TestRev19aBanHoldsPacedMessage(t *testing.T) {
	t.Parallel()
	banHoldsClaimed(t, "450-4.2.1 The user you are trying to contact is receiving mail at a rate that\r\n"+
		"450-4.2.1 prevents additional messages from being delivered. Please resend your\r\n"+
		"450 4.2.1 message at a later point. r19a - gsmtp", "127.0.0.34")
}
