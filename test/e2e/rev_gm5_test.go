package e2e

import "testing"

// TestRevGM5RelayGooglePage: Gmail's replies that gmail-replies.md leaves
// out (internal/enforce/testdata/gmail-replies-page.txt: older wordings,
// a disabled recipient, the relay's TLS, login, address and Workspace SMTP
// relay set-up), given by a fake Gmail to the relay (store and proxy,
// welcomelisted or not) as TestRevPFE3RelayEveryReply gives the
// document's. Each was reported as a reply no rule knows; the relay's own
// faults raised no alert.
func TestRevGM5RelayGooglePage(t *testing.T) {
	t.Parallel()
	relayEveryReply(t, readReplies(t, "gmail-replies-page.txt"))
}

// TestRevGM5CompanionGooglePage: the same replies through a real Postfix
// and postfix-enforcer, as TestRevPFE3CompanionEveryReply.
func TestRevGM5CompanionGooglePage(t *testing.T) {
	t.Parallel()
	companionEveryReply(t, readReplies(t, "gmail-replies-page.txt"))
}
