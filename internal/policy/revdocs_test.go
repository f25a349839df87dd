package policy

import "testing"

// TestRevDocsCcertCNPrintable: a check_ccert_access refusal names the
// certificate's CommonName, as Postfix's does; a client chooses that name,
// so a CR, LF or other unprintable octet in it must not reach the reply
// line.
func TestRevDocsCcertCNPrintable(t *testing.T) {
	for cn, want := range map[string]string{
		"banned.example":    "banned.example",
		"evil\r\n250 ok":    "evil??250 ok",
		"caf\u00e9.example": "caf?.example",
		"":                  "",
	} {
		if got := printableCN(cn); got != want {
			t.Errorf("printableCN(%q) = %q, want %q", cn, got, want)
		}
	}
}
