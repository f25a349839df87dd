package companion

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/postfixlog"
)

// TestPfe18CutDeliveryReported: Postfix cuts what it logs at 2000 bytes
// (as a real Postfix 3.7 does). A spammer writing to a catch-all alias
// (virtual_alias_maps "@relay.example owner@gmail.com") with a 1900-byte
// local part has its orig_to= push the status and Gmail's refusal out of
// the delivery line, which was skipped without a word: the spammer was
// never banned and nobody was told. The line is now reported, with its
// client.
func TestPfe18CutDeliveryReported(t *testing.T) {
	var out strings.Builder
	c := New(Options{Test: true, SenderAccess: filepath.Join(t.TempDir(), "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
		enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{}, nil, maillog.New(&out), nil)
	full := message("4A0001ABC1", "203.0.113.66", "a@spam.example", "owner@gmail.test", "s-1@x", fmt.Sprintf(unsolicited, "s1"))
	long := strings.Repeat("x", 1900)
	full = strings.Replace(full, "to=<owner@gmail.test>,", "to=<owner@gmail.test>, orig_to=<"+long+"@relay.example>,", 1)
	lines := strings.Split(strings.TrimSuffix(full, "\n"), "\n")
	last := lines[len(lines)-1]
	head := strings.Index(last, ": ") + 2 // "Nov 22 ... postfix/smtp[105]: "
	lines[len(lines)-1] = last[:head+postfixlog.MaxLogText]
	got := runLog(t, c, &out, strings.Join(lines, "\n")+"\n")
	want := []string{"would-report 4A0001ABC1 203.0.113.66 Postfix cut the delivery line at 2000 bytes: its status and reply are lost"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("actions:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// A whole line of that length is read as it is.
	out.Reset()
	c = New(Options{Test: true, SenderAccess: filepath.Join(t.TempDir(), "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
		enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{}, nil, maillog.New(&out), nil)
	short := strings.Replace(full, long, strings.Repeat("x", 1200), 1)
	if got := runLog(t, c, &out, short); len(got) != 1 || !strings.HasPrefix(got[0], "would-ban 4A0001ABC1 203.0.113.66") {
		t.Errorf("actions: %q; want the ban", got)
	}
}
