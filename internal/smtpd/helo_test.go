package smtpd

import "testing"

// TestValidHeloULabels: EHLO takes U-labels (RFC 6531), not any octet at
// or above 0x80: a C1 control such as U+009B (a terminal's CSI), a line
// separator or a format character went into the mail log and the
// Received header (rev-web4's leftover).
func TestValidHeloULabels(t *testing.T) {
	for helo, want := range map[string]bool{
		"bücher.example":       true,
		"例え.テスト":               true,
		"mail.example.com":     true,
		"x\u009b2J.example":    false,
		"x\u0085y.example":     false,
		"x\u2028y.example":     false,
		"x\u00a0y.example":     false,
		"x\u200by.example":     false,
		"\u0645\u0646.example": true,
	} {
		if got := validHelo(helo); got != want {
			t.Errorf("validHelo(%q) = %v; want %v", helo, got, want)
		}
	}
}
