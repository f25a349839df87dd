package enforce

import (
	"regexp"
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
		r := Reply{Text: text, Host: host}
		v := rules.Classify(r)
		if again := rules.Classify(r); again != v {
			t.Fatalf("Classify(%q) = %v, then %v", text, v, again)
		}
		if v.Action < None || v.Action > Alert {
			t.Fatalf("Classify(%q) = action %d", text, v.Action)
		}
		if strings.Contains(text, "\n") {
			oneLine := Reply{Text: strings.ReplaceAll(text, "\n", " "), Host: host}
			if got := rules.Classify(oneLine); got != v {
				t.Fatalf("Classify(%q) = %v, but joined %v", text, v, got)
			}
		}
		if p, err := ParseReply(text); err == nil {
			if got := rules.Classify(Reply{Text: p.Text, Host: host}); got != rules.Classify(Reply{Code: p.Code, Enhanced: p.Enhanced, Text: p.Text, Host: host}) {
				t.Fatalf("ParseReply(%q): the parsed code and enhanced code classify differently from the text", text)
			}
			if p.Code < 200 || p.Code > 599 {
				t.Fatalf("ParseReply(%q) = code %d", text, p.Code)
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
			v := rules.Classify(Reply{Text: s})
			if v != rules.Classify(Reply{Text: s}) {
				t.Fatalf("Classify(%q) is not deterministic", s)
			}
		}
	})
}
