package e2e

import (
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// gm28Shapes are forms of a folded Gmail reply that Gmail's own
// formatter does not make but a server or a network in between may: the
// reply is to keep its verdict in each.
var gm28Shapes = []struct {
	name  string
	shape func(string) string
}{
	// Spaces before each line break and a tab after the last word.
	{"trailing", func(r string) string { return strings.ReplaceAll(r, "\r\n", "  \r\n") + " \t" }},
	// A run of spaces between each line's prefix and its text.
	{"wide-gap", func(r string) string { return gm28Prefix.ReplaceAllString(r, "$1    ") }},
	// Words apart by a space, a tab and a space (Postfix logs a tab as
	// "?", a word of its own).
	{"inner-tabs", func(r string) string {
		lines := strings.Split(r, "\r\n")
		for i, l := range lines {
			p := gm28Prefix.FindString(l)
			lines[i] = p + strings.ReplaceAll(l[len(p):], " ", " \t ")
		}
		return strings.Join(lines, "\r\n")
	}},
	// One or two words a line, each under its own prefix.
	{"narrow", func(r string) string {
		lines := strings.Split(r, "\r\n")
		code, enh := lines[0][:3], ""
		if m := gm28Prefix.FindStringSubmatch(lines[0]); m != nil && len(m[1]) > 4 {
			enh = strings.TrimSpace(m[1][4:])
		}
		var words []string
		for _, l := range lines {
			words = append(words, strings.Fields(l[len(gm28Prefix.FindString(l)):])...)
		}
		return foldReply(code, enh, strings.Join(words[:len(words)-3], " "), 12)
	}},
}

// gm28Prefix is a reply line's "550-5.7.1 " or "550 5.7.1 " prefix, the
// code and enhanced code in $1.
var gm28Prefix = regexp.MustCompile(`^(\d{3}[ -](?:\d\.\d{1,3}\.\d{1,3})?) ?`)

// gm28OddReplies is every reply of gmail-replies.md in one of
// gm28Shapes, in turn.
func gm28OddReplies(t *testing.T) []pfe3Reply {
	cases := pfe3Replies(t)
	for i := range cases {
		cases[i].shape = gm28Shapes[i%len(gm28Shapes)].shape
	}
	return cases
}

// TestGm28RelayOddForms: every reply of gmail-replies.md, each in an odd
// form (spaces before the line breaks, a run of spaces after the
// prefixes, tabs between the words, a word or two a line), from the fake
// Gmail to a relay that stores and forwards and to a proxy, welcomelisted
// or not: each gets its verdict's action (TestRevPFE3RelayEveryReply's
// checks).
func TestGm28RelayOddForms(t *testing.T) {
	t.Parallel()
	relayEveryReply(t, gm28OddReplies(t))
}

// TestGm28CompanionOddForms: the same odd forms given to a real Postfix,
// and postfix-enforcer over its log (TestRevPFE3CompanionEveryReply's
// checks).
func TestGm28CompanionOddForms(t *testing.T) {
	t.Parallel()
	companionEveryReply(t, gm28OddReplies(t))
}

// gm28ReuseLog is Postfix's log of a spammer's message (4C2B7985118)
// whose re-injected copy (5D0E1985119) Gmail refuses before amavis's line
// names the original: the copy leaves the queue, and Postfix gives its
// short queue id to an innocent client's message before the late amavis
// and hand-over lines come.
const gm28ReuseLog = `Nov 22 10:00:01 mx1 postfix/smtpd[2107]: 4C2B7985118: client=mail.spammer.example[203.0.113.7]
Nov 22 10:00:01 mx1 postfix/cleanup[2110]: 4C2B7985118: message-id=<20261122.ABC@spammer.example>
Nov 22 10:00:01 mx1 postfix/qmgr[900]: 4C2B7985118: from=<bob@spammer.example>, size=1234, nrcpt=1 (queue active)
Nov 22 10:00:02 mx1 postfix/smtpd[2200]: 5D0E1985119: client=localhost[127.0.0.1]
Nov 22 10:00:02 mx1 postfix/cleanup[2110]: 5D0E1985119: message-id=<20261122.ABC@spammer.example>
Nov 22 10:00:02 mx1 postfix/qmgr[900]: 5D0E1985119: from=<bob@spammer.example>, size=1800, nrcpt=1 (queue active)
Nov 22 10:00:03 mx1 postfix/smtp[2111]: 5D0E1985119: to=<carol@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 [192.0.2.10 12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. 550 5.7.1 for more information. x - gsmtp (in reply to end of DATA command))
Nov 22 10:00:03 mx1 postfix/qmgr[900]: 5D0E1985119: removed
Nov 22 10:00:04 mx1 postfix/smtpd[2300]: 5D0E1985119: client=mail.innocent.example[198.51.100.7]
Nov 22 10:00:04 mx1 postfix/qmgr[900]: 5D0E1985119: from=<alice@innocent.example>, size=900, nrcpt=1 (queue active)
Nov 22 10:00:05 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, [203.0.113.7]:46134 [203.0.113.7] <bob@spammer.example> -> <carol@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <20261122.ABC@spammer.example>, mail_id: dJ3M, Hits: -0.1, size: 1234, queued_as: 5D0E1985119, 812 ms
Nov 22 10:00:05 mx1 postfix/smtp[2108]: 4C2B7985118: to=<carol@gmail.com>, relay=127.0.0.1[127.0.0.1]:10024, delay=0.9, delays=0.1/0/0/0.8, dsn=2.0.0, status=sent (250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as 5D0E1985119)
Nov 22 10:00:05 mx1 postfix/qmgr[900]: 4C2B7985118: removed
Nov 22 10:00:06 mx1 postfix/smtp[2112]: 5D0E1985119: to=<dave@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 [192.0.2.10 12] Our system has detected that this message is 550-5.7.1 likely suspicious due to the very low reputation of the sending domain. 550 5.7.1 for more information. y - gsmtp (in reply to end of DATA command))
`

// TestGm28CompanionQueueIDReused: postfix-enforcer over gm28ReuseLog, the
// lines with and without the late amavis and hand-over lines. The held
// refusal of the spammer's copy (whose client is then the content filter,
// on the welcomelist as in mynetworks) never bans the innocent client that
// Postfix gave the copy's queue id to, and the innocent message's own
// refusal (its sender domain's reputation) blocks its own domain, read as
// its own client's, not the spammer's.
func TestGm28CompanionQueueIDReused(t *testing.T) {
	t.Parallel()
	lines := strings.Split(strings.TrimSuffix(gm28ReuseLog, "\n"), "\n")
	for _, late := range []bool{true, false} {
		log := lines
		if !late {
			log = append(append([]string{}, lines[:10]...), lines[13])
		}
		dir := t.TempDir()
		mailLog := writeFile(t, dir, "mail.log", strings.Join(log, "\n")+"\n", 0o644)
		banLog := filepath.Join(dir, "bans.log")
		out := enforcerOnce(t, nil, enforcerArgs(mailLog, filepath.Join(dir, "state"), filepath.Join(dir, "sender_access"),
			writeFile(t, dir, "welcomelist", "127.0.0.0/8\n", 0o644), banLog, "127.0.0.1:9")...)
		if strings.Contains(out, "198.51.100.7") && !regexp.MustCompile(`(?m)^\S+ block-domain domain=innocent\.example queue=5D0E1985119 client=198\.51\.100\.7 `).MatchString(out) {
			t.Errorf("late lines %v: postfix-enforcer acted on the innocent client for the spammer's copy:\n%s", late, out)
		}
		if !regexp.MustCompile(`(?m)^\S+ block-domain domain=innocent\.example queue=5D0E1985119 client=198\.51\.100\.7 `).MatchString(out) {
			t.Errorf("late lines %v: no block of innocent.example for its own message's refusal:\n%s", late, out)
		}
		if got, b := banLogIPs(banLog); len(got) != 0 {
			t.Errorf("late lines %v: ban log bans %q; want nobody (the spammer's copy's client is the content filter, welcomelisted):\n%s", late, got, b)
		}
	}
}

// gm28Stamp reads a line of Postfix's maillog_file: its time, host, tag,
// PID and message.
var gm28Stamp = regexp.MustCompile(`^([A-Z][a-z]{2}) ([ \d]\d) (\d\d:\d\d:\d\d)(\.\d+)? (\S+) ([^\s\[]+)\[(\d+)\]: (.*)$`)

// gm28Formats turn a line of Postfix's maillog_file into the same line as
// other syslog daemons write it (docs/postfix-enforcer.md, Formats).
var gm28Formats = map[string]func(m []string) string{
	"rfc5424": func(m []string) string {
		return "<22>1 " + gm28ISO(m) + "+00:00 " + m[5] + " " + m[6] + " " + m[7] + " - - " + m[8]
	},
	"rfc5424-sd-bom": func(m []string) string {
		return "<22>1 " + gm28ISO(m) + "Z " + m[5] + " " + m[6] + " " + m[7] + ` - [meta sequenceId="7" x="a\]b"][origin ip="192.0.2.1"] ` + "\ufeff" + m[8]
	},
	"rfc3339":  func(m []string) string { return gm28ISO(m) + "+00:00 " + m[5] + " " + m[6] + "[" + m[7] + "]: " + m[8] },
	"iso-0000": func(m []string) string { return gm28ISO(m) + "+0000 " + m[5] + " " + m[6] + "[" + m[7] + "]: " + m[8] },
	"pri3164": func(m []string) string {
		return "<22>" + m[1] + " " + m[2] + " " + m[3] + " " + m[5] + " " + m[6] + "[" + m[7] + "]: " + m[8]
	},
	"busybox": func(m []string) string {
		return m[1] + " " + m[2] + " " + m[3] + " " + m[5] + " mail.info " + m[6] + "[" + m[7] + "]: " + m[8]
	},
	"crlf": func(m []string) string { return m[0] + "\r" },
}

// gm28ISO is the line's time as RFC 3339 without a zone, in 2026.
func gm28ISO(m []string) string {
	t, err := time.Parse("Jan 2 15:04:05 2006", m[1]+" "+strings.TrimSpace(m[2])+" "+m[3]+" 2026")
	if err != nil {
		return "2026-12-07T00:00:00"
	}
	return t.Format("2006-01-02T15:04:05") + ".123456"
}

// TestGm28CompanionHostileEveryFormat: a real Postfix that relays to the
// scripted Gmail and logs header WARN lines takes a victim's good message
// (198.51.100.7) and spam whose AUTH= sender, HELO, Subject and recipient
// spell log lines about the victim's message (a client= line for its
// queue id, Gmail refusing it). Its log, rewritten line by line into each
// syslog format postfix-enforcer reads (RFC 5424 with and without
// structured data and a BOM, RFC 3339 stamps, a <PRI> prefix, BusyBox's
// facility, CRLF line ends), steers nothing in any of them: the same
// spammers are banned as from Postfix's own file, and the victim never.
func TestGm28CompanionHostileEveryFormat(t *testing.T) {
	t.Parallel()
	pf, _ := hostileGmailPostfix(t, "smtpd_sasl_auth_enable = yes", "header_checks = regexp:{{/^Subject:/ WARN}}")
	vq := gm25Send(t, pf.Addr(), "198.51.100.7", "mx.victim.test", "mx.victim.test",
		[]string{"MAIL FROM:<alice@victim.example>", "RCPT TO:<friend@gmail.test>"},
		"Subject: hello\r\nMessage-Id: <v1@victim.example>\r\n\r\nhi\r\n")
	compWaitLog(t, pf, `to=<friend@gmail\.test>, .*status=sent`, 30*time.Second)
	relay := regexp.MustCompile(`relay=(127\.0\.0\.1\[127\.0\.0\.1\]:\d+)`).FindStringSubmatch(pf.MailLog())[1]
	fake := vq + ": to=<friend@gmail.test>, relay=" + relay + ", delay=0.1, delays=0/0/0/0.1, dsn=5.7.1, status=bounced (host 127.0.0.1[127.0.0.1] said: 550-5.7.1 [127.0.0.1 12] Our system has detected that this message is likely unsolicited mail. 550 5.7.1 - gsmtp (in reply to end of DATA command))"
	client := vq + ": client=mx.victim.test[198.51.100.7]"
	for _, f := range []string{"<22>1 2026-12-07T10:00:00Z mx1 postfix/smtp 4242 - - ", "2026-12-07T10:00:00+00:00 mx1 postfix/smtp[4242]: ", "Dec  7 10:00:00 mx1 mail.info postfix/smtp[4242]: "} {
		gm25Send(t, pf.Addr(), "203.0.113.81", "mx.attacker.test", "x]: "+strings.ReplaceAll(client, " ", "_"),
			[]string{"MAIL FROM:<eve@attacker.example>", "RCPT TO:<spam@gmail.test>"},
			"Subject: "+f+fake+"\r\nX-A: "+f+client+"\r\nMessage-Id: <s"+strconv.Itoa(len(f))+"@attacker.example>\r\n\r\nbuy\r\n")
	}
	hostileSendAll(t, pf.Addr(), []hostileClient{
		{"203.0.113.66", "mx.attacker.test", []string{
			"MAIL FROM:<bob@attacker.test> AUTH=<x, orig_client=victim.test[198.51.100.7]>",
			"RCPT TO:<spam@gmail.test>"}},
		{"203.0.113.68", "mx.quoter.test", []string{
			"MAIL FROM:<eve@quoter.test>",
			`RCPT TO:<"a>` + strings.NewReplacer("<", "", ">", "", "@", "-at-").Replace(fake) + `"@gmail.test>`}},
	})
	compWaitCount(t, pf, `to=<spam@gmail\.test>, .*status=bounced`, 4, 60*time.Second)
	compWaitLog(t, pf, `to=<"a>.*status=sent`, 30*time.Second)
	log := pf.MailLog()
	if !strings.Contains(log, "warning: header Subject: ") {
		t.Errorf("no WARN line in Postfix's log:\n%s", log)
	}
	lines := strings.Split(strings.TrimSuffix(log, "\n"), "\n")
	formats := []string{"maillog_file"}
	for name := range gm28Formats {
		formats = append(formats, name)
	}
	slices.Sort(formats)
	for _, name := range formats {
		out := make([]string, 0, len(lines))
		for _, l := range lines {
			if m := gm28Stamp.FindStringSubmatch(l); m != nil && name != "maillog_file" {
				l = gm28Formats[name](m)
			}
			out = append(out, l)
		}
		dir := t.TempDir()
		mailLog := writeFile(t, dir, "mail.log", strings.Join(out, "\n")+"\n", 0o644)
		banLog := filepath.Join(dir, "bans.log")
		got := enforcerOnce(t, nil, append(enforcerArgs(mailLog, filepath.Join(dir, "state"), filepath.Join(dir, "sender_access"),
			writeFile(t, dir, "welcomelist", "127.0.0.0/8\n", 0o644), banLog, pf.Addr()), "--trusted-upstream", "127.0.0.1")...)
		banned, b := banLogIPs(banLog)
		slices.Sort(banned)
		if want := []string{"203.0.113.66", "203.0.113.81"}; !slices.Equal(slices.Compact(banned), want) {
			t.Errorf("%s: ban log bans %q; want %q:\n%s\n%s", name, banned, want, b, got)
		}
		for _, bad := range []string{"198.51.100.7", "victim", "queue=" + vq, "203.0.113.68"} {
			if strings.Contains(got, bad) {
				t.Errorf("%s: the enforcer's output mentions %q:\n%s", name, bad, got)
			}
		}
	}
}

// TestGm28CompanionNoticeAfterGivenUpID: postfix-enforcer over a log
// where an innocent client's session gives a queue id up (RSET, QUIT) and
// Postfix gives the id to a notice, whose refusal by Gmail comes before
// bounce(8)'s line about it: nobody is banned.
func TestGm28CompanionNoticeAfterGivenUpID(t *testing.T) {
	t.Parallel()
	log := `Dec  6 14:00:00 mx1 postfix/smtpd[2107]: connect from mx.innocent.example[198.51.100.7]
Dec  6 14:00:00 mx1 postfix/smtpd[2107]: 1BC7F9DC767: client=mx.innocent.example[198.51.100.7]
Dec  6 14:00:01 mx1 postfix/smtpd[2107]: disconnect from mx.innocent.example[198.51.100.7] ehlo=1 mail=1 rcpt=1 rset=1 quit=1 commands=5
Dec  6 14:00:05 mx1 postfix/cleanup[2110]: 1BC7F9DC767: message-id=<20261206140005.1BC7F9DC767@mx1.example>
Dec  6 14:00:05 mx1 postfix/qmgr[900]: 1BC7F9DC767: from=<>, size=3481, nrcpt=1 (queue active)
Dec  6 14:00:05 mx1 postfix/smtp[2111]: 1BC7F9DC767: to=<eve@gmail.com>, relay=gmail-smtp-in.l.google.com[142.250.102.27]:25, delay=1.2, delays=0.1/0/0.4/0.7, dsn=5.7.1, status=bounced (host gmail-smtp-in.l.google.com[142.250.102.27] said: 550-5.7.1 [192.0.2.10 12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. 550 5.7.1 x - gsmtp (in reply to end of DATA command))
Dec  6 14:00:05 mx1 postfix/bounce[2112]: 18A889DC732: sender non-delivery notification: 1BC7F9DC767
Dec  6 14:00:05 mx1 postfix/qmgr[900]: 1BC7F9DC767: removed
`
	dir := t.TempDir()
	banLog := filepath.Join(dir, "bans.log")
	out := enforcerOnce(t, nil, enforcerArgs(writeFile(t, dir, "mail.log", log, 0o644), filepath.Join(dir, "state"), filepath.Join(dir, "sender_access"),
		writeFile(t, dir, "welcomelist", "127.0.0.0/8\n", 0o644), banLog, "127.0.0.1:9")...)
	if got, b := banLogIPs(banLog); len(got) != 0 || strings.Contains(out, "198.51.100.7") {
		t.Errorf("ban log bans %q; want nobody:\n%s\n%s", got, b, out)
	}
}
