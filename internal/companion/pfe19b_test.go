package companion

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/postfixlog"
)

// TestPfe19bFilterCopyReported: a simple content filter's copy (pickup's
// uid= is --filter-user's) refused as spam is reported with its client
// unknown, not encapsulated as local mail; one with a null sender (a
// bounce the filter passed on) is, like local mail's, never re-sent; the
// administrator's own mail (another uid), with the spam's Message-ID, is
// still encapsulated.
func TestPfe19bFilterCopyReported(t *testing.T) {
	backup := filepath.Join(t.TempDir(), "backup")
	os.WriteFile(backup, []byte("From b@x  Sun Nov 22 10:00:00 2026\nReceived: by mx1 (Postfix, from userid 1000)\n\tid 4A0003ABC3; Sun, 22 Nov 2026 10:00:01 +0000\nMessage-ID: <s-1@x>\n\nlocal\n\n"), 0o600)
	var out strings.Builder
	c := New(Options{Test: true, Backup: backup, SenderAccess: filepath.Join(t.TempDir(), "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
		enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{FilterUIDs: []string{"998"}}, nil, maillog.New(&out), nil)
	dmarc := "550-5.7.26 Unauthenticated email from example.com is not accepted due to domain's DMARC policy. Please contact the administrator of example.com domain if this was a legitimate mail. To learn about the DMARC initiative, go to 550 5.7.26  https://support.google.com/mail/?p=DmarcRejection %s - gsmtp"
	copyOf := func(s string) string { return strings.Replace(s, "uid=1000 ", "uid=998 ", 1) }
	log := copyOf(message("4A0001ABC1", "", "bob@spam.example", "u1@gmail.test", "s-1@x", fmt.Sprintf(unsolicited, "s1"))) +
		copyOf(message("4A0002ABC2", "", "", "u2@gmail.test", "s-2@x", fmt.Sprintf(dmarc, "s2"))) +
		message("4A0003ABC3", "", "alice@relay.test", "u3@gmail.test", "s-1@x", fmt.Sprintf(unsolicited, "s3"))
	got := runLog(t, c, &out, log)
	want := []string{
		"would-report 4A0001ABC1  the client is unknown",
		"would-report 4A0002ABC2  the relay's own message (a notice): never acted on",
		"would-encapsulate 4A0003ABC3  submitted locally",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") || !strings.Contains(out.String(), `reinjected="submitted by the content filter's user (uid 998)`) {
		t.Errorf("actions:\n%s\nwant:\n%s\nlog:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), out.String())
	}
}
