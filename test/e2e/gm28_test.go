package e2e

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"
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
