package companion

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/postfixlog"
)

// gm26Bannable is the shipped filter's bannable line, as fail2ban reads
// it after the syslog header: the last word is banned.
var gm26Bannable = regexp.MustCompile(`bannable(?:-network)?(?: .*)? (\S+)\s*$`)

// TestGM26BanLineFitsBusyBox: postfix-enforcer sends its ban line to
// syslog, and BusyBox's syslogd reads 256 bytes of a message by default
// (FEATURE_SYSLOGD_READ_BUFFER_SIZE), its header included, and drops the
// rest. The line named the refused recipient whole, text the client
// chose: a long recipient cut the client's address off the line (the
// spammer was never banned), and a quoted recipient holding
// " 198.51.100.7" at the cut had fail2ban ban that victim instead. Every
// line now fits, header and all, and ends in the spammer's address.
func TestGM26BanLineFitsBusyBox(t *testing.T) {
	const spammer, victim = "203.0.113.66", "198.51.100.7"
	var lines revEnf2Sink
	w := enforce.NewBanWriter(&lines, nil, nil, nil)
	var out strings.Builder
	c := New(Options{SenderAccess: filepath.Join(t.TempDir(), "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
		enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{Reinjection: postfixlog.ReinjectNever},
		w, maillog.New(&out), nil)
	n := 0
	for pad := 0; pad < 240; pad += 3 {
		n++
		q := fmt.Sprintf("4B%04dABC1", n)
		to := `"` + strings.Repeat("x", pad) + " " + victim + ` y"@gmail.test`
		for l := range strings.Lines(message(q, spammer, "a@spam.example", to, "m-"+q+"@x", fmt.Sprintf(unsolicited, q))) {
			c.Line(strings.TrimSuffix(l, "\n"))
		}
	}
	w.Flush()
	if len(lines) != n {
		t.Fatalf("%d ban lines; want %d:\n%s", len(lines), n, out.String())
	}
	// Go's log/syslog: "<13>Dec  7 10:00:10 relay-enforcer[PID]: ", the
	// PID up to 4194304.
	for _, pid := range []string{"1", "812", "4194304"} {
		head := "<13>Dec  7 10:00:10 " + enforce.SyslogTag + "[" + pid + "]: "
		for _, l := range lines {
			msg := head + l
			if len(msg) > 255 {
				msg = msg[:255]
			}
			m := gm26Bannable.FindStringSubmatch(msg)
			if m == nil || m[1] != spammer {
				t.Errorf("syslog message %q as BusyBox keeps it (%d bytes of %d) bans %q; want %s", msg, len(msg), len(head+l), m, spammer)
			}
		}
	}
}
