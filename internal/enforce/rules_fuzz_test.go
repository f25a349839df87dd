package enforce

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// FuzzClassify: classifying never panics, gives the same verdict every
// time, and the same for a reply as sent (lines) and as Postfix joins it.
func FuzzClassify(f *testing.F) {
	for _, g := range loadGmailReplies(f) {
		f.Add(strings.Join(gmailLines(g.code, g.enh, g.text, 60), "\r\n"), "gmail-smtp-in.l.google.com")
	}
	for _, s := range []string{
		gmailOK, gmailTemp, "", "550", "550-", "550-5.7.1", "550 5.7.1 550 5.7.1 x", "250-PIPELINING 250 SIZE",
		"451 4.3.0 try again", "599 9.9.9 x", "550-5.7.1 a\n\n550 5.7.1 b\r\n",
		"host mx[192.0.2.1] said: 550 5.1.1 no (in reply to RCPT TO command)",
	} {
		f.Add(s, "")
	}
	rules := DefaultRules()
	f.Fuzz(func(t *testing.T, text, host string) {
		r := Upstream{Reply: textReply(text), Host: host}
		v := rules.Classify(r)
		if again := rules.Classify(r); again != v {
			t.Fatalf("Classify(%q) = %v, then %v", text, v, again)
		}
		if v.Action < None || v.Action > Alert {
			t.Fatalf("Classify(%q) = action %d", text, v.Action)
		}
		if strings.Contains(text, "\n") {
			oneLine := Upstream{Reply: textReply(strings.ReplaceAll(text, "\n", " ")), Host: host}
			if got := rules.Classify(oneLine); got != v {
				t.Fatalf("Classify(%q) = %v, but joined %v", text, v, got)
			}
		}
		if p, err := ParseReply(text); err == nil {
			if got := rules.Classify(Upstream{Reply: textReply(p.Reply.String()), Host: host}); got != rules.Classify(Upstream{Reply: p.Reply, Host: host}) {
				t.Fatalf("ParseReply(%q): the parsed code and enhanced code classify differently from the text", text)
			}
			// Postfix's joined form, split into lines, joins back the same.
			if again, err := ParseReply(p.Reply.String()); err != nil || !slices.Equal(again.Reply.Lines, p.Reply.Lines) || again.Reply.Code != p.Reply.Code || again.Reply.Enhanced != p.Reply.Enhanced {
				t.Fatalf("ParseReply(%q) = %q, but its String %q reads back as %q, %v", text, p.Reply.Lines, p.Reply.String(), again.Reply.Lines, err)
			}
			if p.Reply.Code < 200 || p.Reply.Code > 599 {
				t.Fatalf("ParseReply(%q) = code %d", text, p.Reply.Code)
			}
		}
	})
}

var ruleErrorLine = regexp.MustCompile(`^fuzz\.conf:[0-9]+: `)

// FuzzLoadRules: any file either parses or gives errors that each name
// FILE:LINE; parsed rules classify without panicking.
func FuzzLoadRules(f *testing.F) {
	f.Add([]byte(DefaultRulesText()))
	f.Add([]byte("rule a\naction ban\ncode 5xx 4x1\nenhanced 5.7.* *.1.1\ntext (?P<domain>\\S+) x\nhost .\ngsmtp no\n"))
	f.Add([]byte("rule\naction\n"))
	f.Add([]byte("text x\nrule a\r\n\taction\tnone\r\n"))
	f.Add([]byte("rule a\naction ban\ntext [\n"))
	replies := []string{gmailBulk, gmailAuth421, gmailOK, "550 5.7.1 x", "451 y"}
	f.Fuzz(func(t *testing.T, data []byte) {
		rules, err := ParseRules("fuzz.conf", data)
		if err != nil {
			if rules != nil {
				t.Fatal("rules and an error")
			}
			for _, l := range strings.Split(err.Error(), "\n") {
				if !ruleErrorLine.MatchString(l) {
					t.Fatalf("error line %q does not start with FILE:LINE", l)
				}
			}
			return
		}
		for _, s := range replies {
			v := rules.Classify(upstream(s))
			if v != rules.Classify(upstream(s)) {
				t.Fatalf("Classify(%q) is not deterministic", s)
			}
		}
	})
}
