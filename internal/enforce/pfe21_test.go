package enforce

import (
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestPfe21BanLineFitsSyslog: the companion's ban reason holds the
// refused recipient as Postfix logged it, text the client chose (up to
// Postfix's 2000 bytes). A syslog daemon keeps 1024 bytes of a message
// (RFC 3164's limit: sysklogd, busybox, inetutils), so a long recipient
// cut the line before the client's address, and a recipient
// `"...PADDING 198.51.100.7"@gmail.com` of the right length left another
// address last on the line: fail2ban banned 198.51.100.7. A ban line now
// fits in 1024 bytes with the syslog header Go's log/syslog writes, and
// ends in the banned client.
func TestPfe21BanLineFitsSyslog(t *testing.T) {
	client := netip.MustParseAddr("203.0.113.66")
	// log/syslog's local framing: "<PRI>TIMESTAMP TAG[PID]: MSG\n".
	header := "<13>Dec  7 01:00:00 " + SyslogTag + "[1234567]: "
	var fr []*regexp.Regexp
	for _, s := range fail2banRegexps(t) {
		s = strings.ReplaceAll(s, "<HOST>", `(?P<host>\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+)`)
		s = strings.ReplaceAll(s, "%(__prefix_line)s", `\s*(?:\S+\s+)?relay-enforcer(?:\[\d+\])?:\s+`)
		fr = append(fr, regexp.MustCompile(s))
	}
	for pad := 800; pad < 2000; pad += 97 {
		prefix := "gmail-unsolicited queue 4C2B7985118 to \""
		// Place the victim's address so that a cut at 1024 bytes ends
		// right after it, whatever the padding.
		fill := 1024 - len(header) - len("bannable ") - len(prefix) - len(" 198.51.100.7")
		to := strings.Repeat("x", max(fill, 0)) + " 198.51.100.7 " + strings.Repeat("y", pad) + "\"@gmail.com"
		line := BanLine(prefix+to, client)
		msg := header + line
		if len(msg) > 1024 {
			t.Errorf("ban line of %d bytes with syslog's header (over RFC 3164's 1024)", len(msg))
			msg = msg[:1024] // what the syslog daemon keeps
		}
		if u := BanLine(strings.Repeat("é", pad), client); !utf8.ValidString(u) || len(header+u) > 1024 {
			t.Errorf("BanLine of %d bytes of UTF-8: %d bytes, valid %v", 2*pad, len(u), utf8.ValidString(u))
		}
		if !strings.HasSuffix(line, " 203.0.113.66") {
			t.Errorf("ban line does not end in the client: ...%q", line[max(0, len(line)-40):])
		}
		body := strings.TrimPrefix(msg, "<13>Dec  7 01:00:00 ")
		for _, re := range fr {
			if m := re.FindStringSubmatch(body); m != nil {
				if got := m[re.SubexpIndex("host")]; got != "203.0.113.66" {
					t.Fatalf("fail2ban's filter on the line syslog kept bans %s, not the client 203.0.113.66", got)
				}
			}
		}
	}
}
