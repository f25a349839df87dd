package enforce

import (
	"github.com/relaykeeper/relaykeeper/internal/reply"

	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// relayIP is the relay's own address as Gmail saw it: in Gmail's text,
// never the client to ban.
const relayIP = "192.0.2.25"

const gmailID = "a640c23a62f3a-7e5f9a5b1c2si123456766b.412 - gsmtp"

// gmailReply is one of the replies of gmail-replies.md, as
// testdata/gmail-replies.txt holds them (<relay-ip> is relayIP,
// <domain> example.com).
type gmailReply struct {
	line int
	code int
	enh  string
	text string // without the code prefix and the session id
	want Action
	rule string
	// domain is the Verdict's domain hint, "" for none.
	domain string
}

// loadGmailReplies reads testdata/gmail-replies.txt: "VERDICT RULE CODE
// ENHANCED TEXT" a line.
func loadGmailReplies(t testing.TB) []gmailReply { return loadReplies(t, "gmail-replies.txt") }

// loadReplies reads a file of testdata in gmail-replies.txt's format.
func loadReplies(t testing.TB, name string) []gmailReply {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var out []gmailReply
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.SplitN(line, " ", 5)
		if len(f) != 5 {
			t.Fatalf("%s:%d: want VERDICT RULE CODE ENHANCED TEXT", name, i+1)
		}
		a, ok := ParseAction(f[0])
		code, err := strconv.Atoi(f[2])
		if !ok || err != nil {
			t.Fatalf("%s:%d: bad verdict or code", name, i+1)
		}
		g := gmailReply{line: i + 1, code: code, enh: f[3], text: f[4], want: a, rule: f[1]}
		if m := regexp.MustCompile(`(?:SPF|DKIM) domain \[(\S+) `).FindStringSubmatch(g.text); m != nil {
			g.domain = m[1]
		}
		out = append(out, g)
	}
	return out
}

// gmailScopes are the rules whose pace or alert holds back less or more
// than the destination.
var gmailScopes = map[string]Scope{
	"gmail-receiving-too-quickly": ScopeRecipient,
	"gmail-sending-limit":         ScopeAccount,
	"gmail-sending-limit-code":    ScopeAccount,
}

// gmailLines is text as Gmail sends it: broken into lines of at most width
// characters of text, each with its "550-5.7.1 " prefix, the last with
// "550 5.7.1 " and the session id.
func gmailLines(code int, enh, text string, width int) []string {
	words := strings.Fields(text + " " + gmailID)
	var lines []string
	cur := ""
	for _, w := range words {
		if cur != "" && len(cur)+1+len(w) > width {
			lines = append(lines, cur)
			cur = ""
		}
		if cur != "" {
			cur += " "
		}
		cur += w
	}
	lines = append(lines, cur)
	for i := range lines {
		sep := "-"
		if i == len(lines)-1 {
			sep = " "
		}
		lines[i] = fmt.Sprintf("%d%s%s %s", code, sep, enh, lines[i])
	}
	return lines
}

// TestClassifyGmail classifies every reply of gmail-replies.md with the
// built-in rules: on one line, and broken into lines at several widths (so
// that each phrase is split by a prefix somewhere), both as Gmail sends
// them and as Postfix joins them.
func TestClassifyGmail(t *testing.T) { classifyReplies(t, loadGmailReplies(t)) }

// classifyReplies checks the built-in rules' verdict on each reply, in
// each of the forms TestClassifyGmail names.
func classifyReplies(t *testing.T, replies []gmailReply) {
	rules := DefaultRules()
	for _, g := range replies {
		for _, width := range []int{1000, 72, 50, 31, 17} {
			lines := gmailLines(g.code, g.enh, g.text, width)
			multi := strings.Join(lines, "\r\n")
			joined := strings.Join(lines, " ")
			want := Verdict{Action: g.want, Rule: g.rule, Domain: g.domain, Scope: gmailScopes[g.rule]}
			for _, form := range []struct{ name, reply string }{{"multi-line", multi}, {"joined", joined}} {
				r, err := ParseReply(form.reply)
				if err != nil {
					t.Fatalf("ParseReply(%q): %v", form.reply, err)
				}
				if r.Reply.Code != g.code || r.Reply.Enhanced != g.enh {
					// "421 5.7.32": Google's 5.x.x code on a 4xx reply is read too.
					t.Errorf("ParseReply(%q) = code %d, enhanced %q; want %d, %q", form.reply, r.Reply.Code, r.Reply.Enhanced, g.code, g.enh)
				}
				if got := rules.Classify(r); got != want {
					t.Errorf("Classify(%s, width %d: %q) = %v; want %v", form.name, width, form.reply, got, want)
				}
				// Given as text only, code and enhanced code unset.
				if got := rules.Classify(upstream(form.reply)); got != want {
					t.Errorf("Classify(upstream(%q)) = %v; want %v", form.reply, got, want)
				}
			}
		}
	}
}

// TestClassifyGmailVerbatim is the unsolicited-mail reply exactly as
// gmail-replies.md shows it, spacing and all.
func TestClassifyGmailVerbatim(t *testing.T) {
	const reply = "550-5.7.1 [" + relayIP + "      12] Our system has detected that this message is\n" +
		"550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\n" +
		"550-5.7.1 this message has been blocked. Please visit\n" +
		"550-5.7.1  https://support.google.com/mail/?p=UnsolicitedMessageError\n" +
		"550 5.7.1 for more information. " + gmailID + "\n"
	rules := DefaultRules()
	for _, s := range []string{reply, strings.ReplaceAll(strings.TrimSpace(reply), "\n", " ")} {
		r, err := ParseReply(s)
		if err != nil {
			t.Fatal(err)
		}
		got := rules.Classify(r)
		if want := (Verdict{Action: Ban, Rule: "gmail-unsolicited"}); got != want {
			t.Errorf("Classify(%q) = %v; want %v", s, got, want)
		}
	}
	const wantNorm = "550-5.7.1 [" + relayIP + " 12] Our system has detected that this message is likely unsolicited mail. " +
		"To reduce the amount of spam sent to Gmail, this message has been blocked. Please visit " +
		"https://support.google.com/mail/?p=UnsolicitedMessageError for more information. " + gmailID
	if got := Normalize(reply); got != wantNorm {
		t.Errorf("Normalize(%q) =\n%q; want\n%q", reply, got, wantNorm)
	}
}

// TestClassifyNotRefusals: a reply that is not a refusal is never acted
// on, even one that ends in gsmtp or says what a rule looks for.
func TestClassifyNotRefusals(t *testing.T) {
	rules := DefaultRules()
	for _, s := range []string{
		"250 2.0.0 OK  1795310619 " + gmailID,
		"250 2.1.5 OK " + gmailID,
		"250-2.0.0 likely unsolicited mail 250 2.0.0 OK " + gmailID,
		"354  Go ahead " + gmailID,
		"221 2.0.0 closing connection " + gmailID,
		"",
		"no code at all: likely unsolicited mail",
	} {
		if got := rules.Classify(upstream(s)); got != (Verdict{Action: None}) {
			t.Errorf("Classify(%q) = %v; want none", s, got)
		}
	}
	if got := rules.Classify(Upstream{Reply: reply.Reply{Code: 250, Lines: []string{"likely unsolicited mail"}}}); got.Action != None {
		t.Errorf("Classify(250 ... likely unsolicited mail) = %v; want none", got)
	}
}

// TestClassifyUnknown: a refusal that no rule knows is reported.
func TestClassifyUnknown(t *testing.T) {
	rules := DefaultRules()
	for _, s := range []string{
		"550 5.7.1 Something Gmail has never said before " + gmailID,
		"550-5.7.1 Something new 550 5.7.1 on two lines " + gmailID,
		"451 Try again",
		"554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org",
		"550 5.7.606 Access denied, banned sending IP [" + relayIP + "]",
	} {
		r, err := ParseReply(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := rules.Classify(r); got != (Verdict{Action: Report}) {
			t.Errorf("Classify(%q) = %v; want report", s, got)
		}
	}
}

// TestClassifyEchoes: Gmail's words inside what an upstream quotes back
// from the envelope are the client's, not Gmail's. Every ban and
// block-domain reply, put in a quoted local part that a smarthost echoes
// (Postfix's "<...>: Recipient address rejected", Gmail's own "The sender
// address <...> is not a valid RFC-5321 address"), or in brackets without
// quotes, steers nothing: an outside check blocked any domain that way.
func TestClassifyEchoes(t *testing.T) {
	rules := DefaultRules()
	for _, g := range loadGmailReplies(t) {
		if g.want != Ban && g.want != BlockDomain {
			continue
		}
		text := strings.ReplaceAll(g.text, "example.com", "victim.example")
		for _, reply := range []string{
			`550 5.1.1 <"` + text + `"@example.net>: Recipient address rejected: User unknown in local recipient table`,
			`553-5.1.7 The sender address <"` + text + `"@attacker.example> is not a valid RFC-5321 553-5.1.7 address. 553 5.1.7 https://support.google.com/a/answer/3221692 x1 - gsmtp`,
			`550 5.1.1 "` + text + `"@example.net... User unknown`,
			`550 5.7.1 <` + strings.ReplaceAll(text, " ", "") + `@example.net>: Relay access denied`,
		} {
			u, err := ParseReply(reply)
			if err != nil {
				t.Fatal(err)
			}
			if v := rules.Classify(u); v.Action == Ban || v.Action == BlockDomain || v.Domain != "" {
				t.Errorf("line %d echoed: Classify(%q) = %+v; want no ban, no block", g.line, reply, v)
			}
		}
	}
}

// TestWithoutEchoes: paths and quoted strings are blanked, quotes inside
// brackets and escapes respected, and an unterminated one blanks the rest.
func TestWithoutEchoes(t *testing.T) {
	for in, want := range map[string]string{
		`553 5.1.7 The sender address <x"@b> is not valid`: "553 5.1.7 The sender address <> is not valid",
		`553 5.1.7 The sender address <"x@b> is not valid`: "553 5.1.7 The sender address <> is not valid",
		"550 5.1.1 <a@b>: rejected":                        "550 5.1.1 <>: rejected",
		`550 5.1.1 <"x> y"@b> z`:                           "550 5.1.1 <> z",
		`550 "q \" r" after`:                               `550 "" after`,
		`550 <unterminated likely unsolicited mail`:        "550 <>",
		`550 "unterminated likely unsolicited mail`:        `550 ""`,
		"421 4.7.28 [example.com 30] no echo here":         "421 4.7.28 [example.com 30] no echo here",
		"550 5.7.1 doesn't have a DMARC record, isn't ok":  "550 5.7.1 doesn't have a DMARC record, isn't ok",
	} {
		if got := withoutEchoes(in); got != want {
			t.Errorf("withoutEchoes(%q) = %q; want %q", in, got, want)
		}
	}
}
