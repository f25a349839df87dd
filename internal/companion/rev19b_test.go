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

// TestRev19bCutPipeLineCopyNotLocal: a spammer whose message goes through
// a simple content filter (pipe(8), no --filter-user) chooses a long
// recipient that a catch-all alias takes: the pipe line is cut (by
// Postfix at 2000 bytes, or by the syslog daemon sooner) and not read,
// so the filter's re-injected copy, picked up a second later, was taken
// for local mail and Gmail's spam refusal of it encapsulated (the spam
// re-sent as the relay). A cut delivery line may be pipe(8)'s: the copy
// is of an unknown client, reported. A quoted recipient of ")" has the
// cut line end in ")", as a whole one does.
func TestRev19bCutPipeLineCopyNotLocal(t *testing.T) {
	for _, tc := range []struct {
		size  int
		local string
	}{{postfixlog.MaxLogText, strings.Repeat("a", 2100)}, {1024, strings.Repeat("a", 2100)},
		// cut anywhere, the line ends in ")", as a whole line does
		{1024, `"` + strings.Repeat(")", 2100) + `"`}} {
		t.Run(fmt.Sprint(tc.size, tc.local[:1]), func(t *testing.T) {
			backup := filepath.Join(t.TempDir(), "backup")
			os.WriteFile(backup, []byte("From b@x  Sun Nov 22 10:00:00 2026\nReceived: by mx1 (Postfix, from userid 998)\n\tid 5D0E1985119; Sun, 22 Nov 2026 10:00:03 +0000\nMessage-ID: <s-1@x>\n\nspam\n\n"), 0o600)
			var out strings.Builder
			c := New(Options{Test: true, Backup: backup, SenderAccess: filepath.Join(t.TempDir(), "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
				enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{}, nil, maillog.New(&out), nil)
			pipe := "4C2B7985118: to=<m@gmail.test>, orig_to=<" + tc.local + "@relay.test>, relay=filter, delay=1, delays=0/0/0/1, dsn=2.0.0, status=sent (delivered via filter service)"
			log := "Nov 22 10:00:01 mx1 postfix/smtpd[100]: 4C2B7985118: client=mx.attacker.example[203.0.113.66]\n" +
				"Nov 22 10:00:01 mx1 postfix/cleanup[101]: 4C2B7985118: message-id=<s-1@x>\n" +
				"Nov 22 10:00:01 mx1 postfix/qmgr[102]: 4C2B7985118: from=<bob@attacker.example>, size=900, nrcpt=1 (queue active)\n" +
				strings.Replace(message("5D0E1985119", "", "bob@attacker.example", "m@gmail.test", "s-1@x", fmt.Sprintf(unsolicited, "s1")), "uid=1000 ", "uid=998 ", 1)
			i := strings.Index(log, "Nov 22 10:00:03 mx1 postfix/smtp[")
			log = log[:i] + "Nov 22 10:00:02 mx1 postfix/pipe[2301]: " + pipe[:tc.size] + "\n" + log[i:]
			got := runLog(t, c, &out, log)
			if strings.Join(got, "\n") == "" || strings.Contains(strings.Join(got, "\n"), "encapsulate") {
				t.Errorf("actions:\n%s\nwant the copy reported, its client unknown, not encapsulated\nlog:\n%s", strings.Join(got, "\n"), out.String())
			}
		})
	}
}
