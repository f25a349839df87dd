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

// TestGM26UnknownMessageNotPostfixs: a refusal of a message none of whose
// lines the log holds (postfix-enforcer started after them, with
// --from-end, or on a log rotated and compressed meanwhile: on its first
// start, every deferred message in Postfix's queue) was reported as "the
// relay's own message (a notice)": Postfix's bounce. Its client is
// unknown, and the report says so; a real notice (qmgr's from=<> and
// bounce's line) is still Postfix's own.
func TestGM26UnknownMessageNotPostfixs(t *testing.T) {
	var lines revEnf2Sink
	w := enforce.NewBanWriter(&lines, nil, nil, nil)
	var out strings.Builder
	c := New(Options{SenderAccess: filepath.Join(t.TempDir(), "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
		enforce.Policy{Rules: enforce.DefaultRules()}, &postfixlog.Tracker{Reinjection: postfixlog.ReinjectNever},
		w, maillog.New(&out), nil)
	reply := fmt.Sprintf(unsolicited, "u1")
	delivery := func(q string) string {
		return "Nov 22 10:00:03 mx1 postfix/smtp[105]: " + q + ": to=<u1@gmail.test>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=2, delays=0/0/1/1, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: " + reply + " (in reply to end of DATA command))"
	}
	c.Line(delivery("4C0001ABC1"))
	// Postfix's own notice: cleanup, bounce and qmgr logged it.
	c.Line("Nov 22 10:00:04 mx1 postfix/cleanup[101]: 4C0002ABC2: message-id=<n@mx1>")
	c.Line("Nov 22 10:00:04 mx1 postfix/bounce[106]: 4C0001ABC1: sender non-delivery notification: 4C0002ABC2")
	c.Line("Nov 22 10:00:04 mx1 postfix/qmgr[102]: 4C0002ABC2: from=<>, size=900, nrcpt=1 (queue active)")
	c.Line(delivery("4C0002ABC2"))
	w.Flush()
	got := out.String()
	var unknown, notice string
	for _, l := range strings.Split(got, "\n") {
		switch {
		case strings.Contains(l, "queue=4C0001ABC1"):
			unknown = l
		case strings.Contains(l, "queue=4C0002ABC2"):
			notice = l
		}
	}
	if !strings.Contains(unknown, " report ") || strings.Contains(unknown, "own message") || !strings.Contains(unknown, "client is unknown") {
		t.Errorf("the unknown message's line: %q; want a report that its client is unknown", unknown)
	}
	if !strings.Contains(notice, " report ") || !strings.Contains(notice, "own message") {
		t.Errorf("the notice's line: %q; want a report of the relay's own message", notice)
	}
	if len(lines) != 0 {
		t.Errorf("ban lines %q; want none", lines)
	}
}
