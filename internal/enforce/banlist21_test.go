package enforce

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestBanListEscapesReason: a ban's reason quotes the upstream's reply, a
// stranger's text (an upstream the relay was pointed at, or a hand-edited
// ban file). `relaykeeper bans list` printed it raw to the administrator's
// terminal, so an ESC or a C1 CSI (U+009B) in it was a terminal command
// (clear the screen, set the title), and a tab made a column of its own.
// It is escaped as the queue listings escape strangers' text.
func TestBanListEscapesReason(t *testing.T) {
	reason := "550 5.7.1 spam\x1b[2J\u009b31m\x1b]0;owned\a\tcol\nline"
	var out bytes.Buffer
	list := []BanEntry{{IP: netip.MustParseAddr("192.0.2.7"), Until: time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC), Reason: reason}}
	if err := WriteBanList(&out, list, false, nil); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if strings.ContainsAny(got, "\x1b\u009b\a") || strings.Count(got, "\n") != 2 || strings.Count(got, "\t") != 0 {
		t.Errorf("ban list %q: the reason's controls reach the terminal", got)
	}
	if !strings.Contains(got, `550 5.7.1 spam\x1b[2J\u009b31m\x1b]0;owned\a\tcol\nline`) {
		t.Errorf("ban list %q; want the reason with its controls escaped", got)
	}
}
