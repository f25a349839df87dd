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

// gm22Reply is one line of enforce's testdata/gmail-replies.txt: every
// reply of gmail-replies.md with its verdict and rule.
type gm22Reply struct {
	verdict, rule, enh, text string
	code                     int
}

func gm22Replies(t *testing.T) []gm22Reply {
	data, err := os.ReadFile("../enforce/testdata/gmail-replies.txt")
	if err != nil {
		t.Fatal(err)
	}
	var out []gm22Reply
	for _, l := range strings.Split(string(data), "\n") {
		if l == "" || l[0] == '#' {
			continue
		}
		f := strings.SplitN(l, " ", 5)
		var g gm22Reply
		g.verdict, g.rule, g.enh, g.text = f[0], f[1], f[3], f[4]
		fmt.Sscan(f[2], &g.code)
		out = append(out, g)
	}
	return out
}

// gm22Wrap is text as Gmail breaks it (lines of at most width characters,
// each with its prefix), joined as Postfix logs it.
func gm22Wrap(code int, enh, text string, width int) string {
	var lines []string
	cur := ""
	for _, w := range strings.Fields(text) {
		if cur != "" && len(cur)+1+len(w) > width {
			lines = append(lines, cur)
			cur = ""
		}
		cur = strings.TrimSpace(cur + " " + w)
	}
	lines = append(lines, cur)
	for i := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		lines[i] = fmt.Sprintf("%d%s%s %s", code, sep, enh, lines[i])
	}
	return strings.Join(lines, " ")
}

// TestGm22CompanionGmailVariants: postfix-enforcer reads every reply of
// gmail-replies.md from Postfix's log (joined at Gmail's widths, the relay
// in IPv4 and IPv6, Gmail's MX by IPv4 and IPv6, bounced or deferred) and
// does what the document says; a welcomelisted client is never sanctioned.
func TestGm22CompanionGmailVariants(t *testing.T) {
	dir := t.TempDir()
	wl := filepath.Join(dir, "welcomelist")
	os.WriteFile(wl, []byte("198.51.100.9\n"), 0o644)
	w, err := enforce.OpenWelcomelist(wl)
	if err != nil {
		t.Fatal(err)
	}
	total, good := map[string]int{}, map[string]int{}
	n := 0
	for _, g := range gm22Replies(t) {
		for _, relayIP := range []string{"192.0.2.25", "2001:db8::25"} {
			for _, mx := range []string{"gmail-smtp-in.l.google.com[142.250.102.27]", "gmail-smtp-in.l.google.com[2a00:1450:400c:c0a::1b]"} {
				for _, width := range []int{1000, 76, 50, 31} {
					for _, client := range []string{"203.0.113.4", "2001:db8:5::4", "198.51.100.9"} {
						n++
						total[g.verdict]++
						text := strings.ReplaceAll(g.text, "192.0.2.25", relayIP) + fmt.Sprintf(" a640c23a62f3a-7e5f9a5b1c2si%07d.412 - gsmtp", n)
						reply := gm22Wrap(g.code, g.enh, text, width)
						status := "bounced"
						if g.code/100 == 4 {
							status = "deferred"
						}
						q := fmt.Sprintf("4B%08X", n)
						var b strings.Builder
						// At RCPT TO no content was read: a ban's words are
						// about the relay's address, and ban nobody.
						stage, verdict := "end of DATA", g.verdict
						if width == 31 {
							stage = "RCPT TO"
							if verdict == "ban" {
								verdict = "none"
							}
						}
						stamp := "Dec  7 03:00:0"
						if n%2 == 0 {
							// rsyslog's RFC 3339 timestamps (the journal's -o short-iso too).
							stamp = "2026-12-07T03:00:0"
						}
						fmt.Fprintf(&b, stamp+"1 mx1 postfix/smtpd[100]: %s: client=host.example[%s]\n", q, client)
						fmt.Fprintf(&b, stamp+"1 mx1 postfix/cleanup[101]: %s: message-id=<m%d@example.com>\n", q, n)
						fmt.Fprintf(&b, stamp+"1 mx1 postfix/qmgr[102]: %s: from=<alice@example.com>, size=900, nrcpt=1 (queue active)\n", q)
						fmt.Fprintf(&b, stamp+"3 mx1 postfix/smtp[105]: %s: to=<bob%d@gmail.com>, relay=%s:25, delay=2, delays=0/0/1/1, dsn=%s, status=%s (host %s said: %s (in reply to %s command))\n",
							q, n, mx, g.enh, status, mx, reply, stage)
						var out strings.Builder
						c := New(Options{Test: true, SenderAccess: filepath.Join(dir, "sender_access"), SMTP: "127.0.0.1:1", Sender: "postmaster@relay.test"},
							enforce.Policy{Rules: enforce.DefaultRules(), Welcome: w}, &postfixlog.Tracker{Reinjection: postfixlog.ReinjectNever},
							nil, maillog.New(&out), nil)
						got := runLog(t, c, &out, b.String())
						want := "would-" + verdict
						if verdict == "encapsulate" || client == "198.51.100.9" && (verdict == "ban" || verdict == "block-domain") {
							// No backup mailbox (-f): the copy cannot be made.
							want = "would-report"
						}
						ok := false
						switch {
						case verdict == "none":
							ok = len(got) == 0
						case len(got) == 1:
							ok = strings.HasPrefix(got[0], want+" "+q+" ")
						}
						if ok {
							// The rule too: the log line names it.
							ok = verdict == "none" || strings.Contains(out.String(), "rule="+g.rule+" ")
						}
						if ok {
							good[g.verdict]++
						} else if total[g.verdict]-good[g.verdict] < 4 {
							t.Errorf("%s %s at %s (client %s, mx %s, width %d): got %q; want %s\nlog line: %s\nout: %s", g.verdict, g.rule, stage, client, mx, width, got, want, b.String(), out.String())
						}
					}
				}
			}
		}
	}
	for _, v := range []string{"ban", "block-domain", "encapsulate", "pace", "alert", "none"} {
		t.Logf("%-12s variants %5d as the doc says %5d", v, total[v], good[v])
	}
}
