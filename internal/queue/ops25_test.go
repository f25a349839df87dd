package queue

import (
	"strings"
	"testing"
	"time"
	"unicode"
)

// TestOps25QuarantineText: `queue quarantine` prints what recovery set
// aside, which is where a relay's torn receipts and a migration's foreign
// files land. A sender or recipient with U+009B (a terminal's CSI, which
// SMTPUTF8 lets a client put in its address) went to the terminal as the
// character, where `queue list` escapes it; and an E-MailRelay file name's
// id, longer than relaykeeper's 16 characters, pushed its line out of the
// columns of the heading.
func TestOps25QuarantineText(t *testing.T) {
	sender := "\"\u009b31mred\"@example.org"
	l := QuarantineListing{Dir: "/var/spool/relaykeeper/.quarantine", Messages: []QuarantinedMessage{
		{ID: "emailrelay.123.1700000000.1", Files: []string{"emailrelay.123.1700000000.1.envelope.bad"}, State: "failed",
			Size: 18, Moved: time.Date(2026, 11, 22, 3, 5, 8, 0, time.UTC), Problem: "envelope line 10: no End line (torn file)"},
		{ID: "6B025C01C02B2390", Files: []string{"6B025C01C02B2390.envelope"}, State: "ready", Size: -1,
			Moved: time.Date(2026, 11, 22, 3, 7, 1, 0, time.UTC), Sender: &sender,
			Recipients: []Recipient{{Addr: "\"\u202egnp.exe\"@example.net", Status: "pending"}},
			Problem:    "content file 6B025C01C02B2390.content is missing"},
	}}
	var out strings.Builder
	l.WriteText(&out)
	text := out.String()
	for _, c := range text {
		if c != '\n' && (unicode.IsControl(c) || unicode.Is(unicode.Cf, c)) {
			t.Errorf("queue quarantine prints the control %U unescaped:\n%s", c, text)
		}
	}
	if !strings.Contains(text, `<"\u009b31mred"@example.org>`) {
		t.Errorf("queue quarantine does not show the sender escaped:\n%s", text)
	}
	// SIZE is right-aligned: its last character is in the same column on
	// the heading and on every message's line.
	lines := strings.Split(text, "\n")
	col := strings.Index(lines[1], "SIZE") + len("SIZE")
	for _, line := range lines[2:] {
		if strings.HasPrefix(line, " ") || line == "" {
			continue
		}
		if end := len(strings.Fields(line)[0]); col <= end || line[col-1] == ' ' || line[col] != ' ' {
			t.Errorf("the line %q does not end its SIZE in column %d of the heading %q", line, col, lines[1])
		}
	}
}
