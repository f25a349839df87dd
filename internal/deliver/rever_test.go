package deliver

import "testing"

// X-MailRelay-ReasonCode is a number, as E-MailRelay writes it (0 when the
// failure came with no SMTP reply), for the scripts that read it: not the
// first three characters of whatever the reason says ("mes" for an
// expiry, "4.4" for a failed connection).
func TestRevERReasonCode(t *testing.T) {
	for reply, want := range map[string]string{
		"550 5.1.1 no such user": "550",
		"554":                    "554",
		"message delivery expired after 5 days in the queue; last reply: 451 later": "0",
		"4.4.1 upstream connect failed: Connection refused":                         "0",
		"":       "0",
		"5501 x": "0",
		"55 x":   "0",
		"abc x":  "0",
	} {
		if got := reasonCode(reply); got != want {
			t.Errorf("reasonCode(%q) = %q; want %q", reply, got, want)
		}
	}
}
