package enforce

import "testing"

// TestRevGM5ClassifyGooglePage: Gmail's replies that gmail-replies.md does
// not list (Google's error page, public bounce logs), each in every form
// TestClassifyGmail uses. Each was reported as unknown ("no rule matched")
// though its meaning is one of the document's: an older wording of a
// broken header, a disabled recipient, the relay's own TLS, login, IP or
// Workspace SMTP relay set-up, a failed authentication.
func TestRevGM5ClassifyGooglePage(t *testing.T) {
	classifyReplies(t, loadReplies(t, "gmail-replies-page.txt"))
}
