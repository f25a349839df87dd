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

// TestRevS15HeloContextO: IDNA2008's CONTEXTO characters are punctuation
// or symbols, not letters, and 8bc66e0 refused them: EHLO col·legi.cat
// (the Catalan middle dot, U+00B7, of real .cat names), a Japanese name
// with the katakana middle dot (U+30FB), Greek's keraia (U+0375) and
// Hebrew's geresh and gershayim (U+05F3, U+05F4) heard 501 5.5.2; they
// were accepted before. The other punctuation stays refused.
func TestRevS15HeloContextO(t *testing.T) {
	for helo, want := range map[string]bool{
		"col\u00b7legi.cat":                       true,
		"\u4f8b\u3048\u30fb\u30c6\u30b9\u30c8.jp": true,
		"\u03b1\u0375\u03b2.example":              true,
		"\u05d0\u05f3\u05d1\u05f4\u05d2.example":  true,
		"x\u00a1y.example":                        false,
		"x\u2022y.example":                        false,
	} {
		if got := validHelo(helo); got != want {
			t.Errorf("validHelo(%q) = %v; want %v", helo, got, want)
		}
	}
}
