package stats

import (
	"strings"
	"testing"
	"unicode"
)

// TestOps25TextEscapesTerminalControls: `relaykeeper stats mail.log`
// prints the senders, recipients and replies of its top lists, which are
// strangers' text: SMTPUTF8 lets a client put U+009B (a terminal's CSI) in
// its address, and the mail log writes it escaped, but the report printed
// it as the character, as `queue list` (docs/queue.md) does not.
func TestOps25TextEscapesTerminalControls(t *testing.T) {
	log := `2026-11-22T02:26:26.378Z connect client=127.0.0.1:49068 listener=127.0.0.1:2525
2026-11-22T02:26:26.385Z accept id=6B0252D2F906FE64 client=127.0.0.1:49068 from="<\"\u009b31mred\"@example.org>" nrcpt=1 size=372 auth=-
2026-11-22T02:26:26.389Z delivery id=6B0252D2F906FE64 to="<\"\u202egnp.exe\"@example.net>" relay=127.0.0.1:2526 result=bounced delay=0.00 attempt=1 reply="550 5.1.1 \x1b[2Jno such user" client=127.0.0.1:49068
2026-11-22T02:26:27.000Z reject client=127.0.0.1:49070 stage=rcpt reply="554 5.7.1 <\"\u009b2J\"@example.net>: Relay access denied"
`
	r, err := Aggregate(strings.NewReader(log), 10)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	WriteText(&out, r)
	text := out.String()
	for _, c := range text {
		if c != '\n' && c != '\t' && (unicode.IsControl(c) || unicode.Is(unicode.Cf, c)) {
			t.Errorf("the report has the control %U unescaped:\n%s", c, text)
		}
	}
	if !strings.Contains(text, `\u009b31mred`) {
		t.Errorf("the report does not show the sender escaped (\\u009b31mred):\n%s", text)
	}
}
