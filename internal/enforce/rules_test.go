package enforce

import (
	"github.com/relaykeeper/relaykeeper/internal/reply"

	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The built-in rules are etc/enforce-rules.conf: the embedded copy must
// not drift from the file operators read and copy.
func TestDefaultRulesAreEtcFile(t *testing.T) {
	etc, err := os.ReadFile("../../etc/enforce-rules.conf")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(etc), DefaultRulesText()); diff != "" {
		t.Errorf("etc/enforce-rules.conf and internal/enforce/default-rules.conf differ (-etc +embedded):\n%s", diff)
	}
	if _, err := ParseRules("etc/enforce-rules.conf", etc); err != nil {
		t.Errorf("ParseRules(etc/enforce-rules.conf): %v", err)
	}
	DefaultRules() // panics on a bad built-in file
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLoadRulesErrors: every problem, each as FILE:LINE.
func TestLoadRulesErrors(t *testing.T) {
	const text = `# a comment
action ban
rule ok-one
    action ban
    text   unsolicited

rule ok-one
    action none
rule bad name!
    action none
rule no-action
    code 550
rule bad-values
    action   banish
    code     250 5x 5xxx
    enhanced 5.7 2.0.0 5.x.1
    text     (unclosed
    host     [z-a]
    gsmtp    maybe
    colour   blue
    text
rule twice
    action ban
    action none
    host   a
    host   b
    gsmtp  yes
    gsmtp  no
rule
    action none
`
	path := writeFile(t, "rules.conf", text)
	_, err := LoadRules(path)
	if err == nil {
		t.Fatal("LoadRules: no error")
	}
	var got []string
	for _, l := range strings.Split(err.Error(), "\n") {
		got = append(got, strings.TrimPrefix(l, path))
	}
	want := []string{
		`:2: "action" before the first rule: start a rule with "rule NAME"`,
		`:7: rule "ok-one" is already defined at line 3`,
		`:9: rule name "bad name!": use letters, digits, '.', '_' and '-'`,
		`:11: rule "no-action" has no action`,
		`:14: unknown action "banish" (want none, ban, block-domain, encapsulate, pace, alert or report)`,
		`:15: code "250": rules see only refusals: the code must start with 4 or 5`,
		`:15: code "5x": want three digits, or x for any digit (550, 5xx, 55x)`,
		`:15: code "5xxx": want three digits, or x for any digit (550, 5xx, 55x)`,
		`:16: enhanced "5.7": want CLASS.SUBJECT.DETAIL, each a number or * (5.7.26, 5.7.*)`,
		`:16: enhanced "2.0.0": rules see only refusals: the class must be 4 or 5`,
		`:16: enhanced "5.x.1": want CLASS.SUBJECT.DETAIL, each a number or * (5.7.26, 5.7.*)`,
		":17: text: error parsing regexp: missing closing ): `(?i)(unclosed`",
		":18: host: error parsing regexp: invalid character class range: `z-a`",
		`:19: gsmtp "maybe": want yes or no`,
		`:20: unknown keyword "colour" (want rule, action, code, enhanced, text, host, gsmtp or scope)`,
		`:21: text without a value`,
		`:13: rule "bad-values" has no action`,
		`:24: second action in rule "twice"`,
		`:26: second host in rule "twice": join them with | in one pattern`,
		`:28: second gsmtp in rule "twice"`,
		`:29: rule without a name`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("LoadRules errors (-want +got):\n%s", diff)
	}
}

func TestLoadRulesMissingFile(t *testing.T) {
	_, err := LoadRules(filepath.Join(t.TempDir(), "none.conf"))
	if err == nil || !strings.HasPrefix(err.Error(), "enforce: rules: open ") {
		t.Errorf("LoadRules(missing) = %v; want enforce: rules: open ...", err)
	}
}

// TestClassifyConditions exercises each condition and first-match-wins.
func TestClassifyConditions(t *testing.T) {
	const text = "# conditions\n" +
		"rule host-only\n  action report\n  host   ^mx\\.example\\.net$\n" +
		"rule gmail-marker\n\taction\tencapsulate\n\tgsmtp\tyes\n\ttext\tsome words\n" +
		"rule not-gmail\n  action none\n  gsmtp no\n  text some words\n" +
		"rule code-class\n  action ban\n  code 45x\n" +
		"rule enhanced-any\n  action block-domain\n  code 5xx\n  enhanced 5.7.* 5.1.1\n" +
		"rule two-texts\n  action ban\n  text alpha\n  text beta\n" +
		"rule domain\n  action block-domain\n  text from (?P<domain>\\S+) refused\n" +
		"rule catch-all\n  action none\n"
	rules, err := ParseRules("t.conf", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		reply Upstream
		want  Verdict
	}{
		{Upstream{Reply: textReply("550 5.7.1 some words"), Host: "MX.example.net"}, Verdict{Action: Report, Rule: "host-only"}},
		{Upstream{Reply: textReply("550 5.7.1 some words"), Host: "mx.example.net.evil"}, Verdict{Action: None, Rule: "not-gmail"}},
		{upstream("550 5.7.1 Some  Words x - gsmtp"), Verdict{Action: Encapsulate, Rule: "gmail-marker"}},
		{upstream("550-5.7.1 some 550 5.7.1 words x - GSMTP)"), Verdict{Action: Encapsulate, Rule: "gmail-marker"}},
		{upstream("451 4.7.1 x"), Verdict{Action: Ban, Rule: "code-class"}},
		{upstream("461 4.7.1 x"), Verdict{Action: None, Rule: "catch-all"}},
		{upstream("554 5.7.99 x"), Verdict{Action: BlockDomain, Rule: "enhanced-any"}},
		{upstream("550 5.1.1 x"), Verdict{Action: BlockDomain, Rule: "enhanced-any"}},
		{Upstream{Reply: reply.Reply{Code: 550, Enhanced: "5.7.01", Lines: []string{"x"}}}, Verdict{Action: BlockDomain, Rule: "enhanced-any"}},
		{upstream("550 5.1.2 alpha"), Verdict{Action: None, Rule: "catch-all"}},
		{upstream("550 5.1.2 beta and alpha"), Verdict{Action: Ban, Rule: "two-texts"}},
		{upstream("550-5.1.2 alpha 550 5.1.2 beta"), Verdict{Action: Ban, Rule: "two-texts"}},
		{upstream("550 5.1.2 from Example.ORG refused"), Verdict{Action: BlockDomain, Rule: "domain", Domain: "example.org"}},
		{upstream("550 5.1.2 from [192.0.2.1] refused"), Verdict{Action: BlockDomain, Rule: "domain"}},
		{upstream("550 5.1.2 from 192.0.2.1 refused"), Verdict{Action: BlockDomain, Rule: "domain"}},
		{upstream("250 2.0.0 some words - gsmtp"), Verdict{Action: None}},
	}
	for _, tt := range tests {
		if got := rules.Classify(tt.reply); got != tt.want {
			t.Errorf("Classify(%+v) = %v; want %v", tt.reply, got, tt.want)
		}
	}
}

// TestClassifyNoRules: the zero value and nil report every refusal.
func TestClassifyNoRules(t *testing.T) {
	for _, rules := range []*Rules{nil, {}} {
		if got := rules.Classify(upstream("550 5.7.1 x")); got != (Verdict{Action: Report}) {
			t.Errorf("Classify with no rules = %v; want report", got)
		}
		if got := rules.Classify(upstream("250 ok")); got != (Verdict{Action: None}) {
			t.Errorf("Classify(250) with no rules = %v; want none", got)
		}
	}
}

func TestNormalize(t *testing.T) {
	tests := []struct{ in, want string }{
		{"550-5.7.1 a is likely\n550-5.7.1 unsolicited mail\r\n550 5.7.1 x - gsmtp", "550-5.7.1 a is likely unsolicited mail x - gsmtp"},
		{"550-5.7.1 a is likely 550-5.7.1 unsolicited mail 550 5.7.1 x - gsmtp", "550-5.7.1 a is likely unsolicited mail x - gsmtp"},
		{"550-5.7.1  a   b\t550-5.7.1  https://x 550 5.7.1", "550-5.7.1 a b https://x"},
		// Only the first line's code is a prefix.
		{"550-5.7.1 a 421-4.7.0 b 550 5.7.1 c", "550-5.7.1 a 421-4.7.0 b c"},
		// A one-line reply keeps numbers in its text.
		{"550 5.7.1 error 550 5.7.1 from the next hop", "550 5.7.1 error 550 5.7.1 from the next hop"},
		// Without enhanced codes.
		{"550-first 550-second 550 third", "550-first second third"},
		{"250-mx.example Hello 250-PIPELINING 250 SIZE 100", "250-mx.example Hello PIPELINING SIZE 100"},
		// With enhanced codes, a bare "550" in the text is not a prefix.
		{"550-5.7.1 a 550 b 550 5.7.1 c", "550-5.7.1 a 550 b c"},
		// Nothing after the last line.
		{"550-5.7.1 a 550 5.7.1 b 550 5.7.1 c", "550-5.7.1 a b 550 5.7.1 c"},
		{"no code  here", "no code here"},
		{"550", "550"},
		{"550 5.7.1", "550 5.7.1"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Normalize(tt.in); got != tt.want {
			t.Errorf("Normalize(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseReply(t *testing.T) {
	// want.Text is the reply's String: Postfix's joined form.
	type parsed struct {
		Code           int
		Enhanced, Text string
		Host, Stage    string
	}
	tests := []struct {
		in   string
		want parsed
	}{
		{"550-5.7.26 a\n550 5.7.26 b - gsmtp\n", parsed{Code: 550, Enhanced: "5.7.26", Text: "550-5.7.26 a 550 5.7.26 b - gsmtp"}},
		{"  421 4.3.0 Temporary System Problem.  Try again later (10).  ", parsed{Code: 421, Enhanced: "4.3.0", Text: "421 4.3.0 Temporary System Problem.  Try again later (10)."}},
		{"451 try later", parsed{Code: 451, Text: "451 try later"}},
		{"550 4.7.1 class mismatch", parsed{Code: 550, Text: "550 4.7.1 class mismatch"}},
		{"status=bounced (host gmail-smtp-in.l.google.com[142.250.27.26] said: 553-5.1.7 The sender address <x@example.com> is not a valid RFC-5321 address. 553 5.1.7 more - gsmtp (in reply to MAIL FROM command))",
			parsed{Code: 553, Enhanced: "5.1.7", Host: "gmail-smtp-in.l.google.com", Stage: "mail",
				Text: "553-5.1.7 The sender address <x@example.com> is not a valid RFC-5321 address. 553 5.1.7 more - gsmtp"}},
		{"host mx[192.0.2.1] said: 550 5.1.1 no such user (in reply to RCPT TO command)", parsed{Code: 550, Enhanced: "5.1.1", Host: "mx", Stage: "rcpt", Text: "550 5.1.1 no such user"}},
		{"550 5.7.1 blocked (in reply to end of DATA command)", parsed{Code: 550, Enhanced: "5.7.1", Stage: "data", Text: "550 5.7.1 blocked"}},
	}
	for _, tt := range tests {
		u, err := ParseReply(tt.in)
		if err != nil {
			t.Errorf("ParseReply(%q): %v", tt.in, err)
			continue
		}
		got := parsed{Code: u.Reply.Code, Enhanced: u.Reply.Enhanced, Text: u.Reply.String(), Host: u.Host, Stage: u.Stage}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseReply(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
	// Postfix's joined form is split back into the reply's lines.
	if u, err := ParseReply("550-5.7.1 a  b 550-5.7.1 c 550 5.7.1 d"); err != nil || !cmp.Equal(u.Reply.Lines, []string{"5.7.1 a  b", "5.7.1 c", "5.7.1 d"}) {
		t.Errorf("ParseReply(joined) = %q, %v; want three lines", u.Reply.Lines, err)
	}
	for _, bad := range []string{"", "hello", "55 short", "650 no such class", "5500 x"} {
		if r, err := ParseReply(bad); err == nil {
			t.Errorf("ParseReply(%q) = %+v; want an error", bad, r)
		}
	}
}

// textReply is a reply given only as text, its code and enhanced code
// unset: they are read from the text.
func textReply(s string) reply.Reply { return reply.Reply{Lines: []string{s}} }

// upstream is a refusal given only as text.
func upstream(s string) Upstream { return Upstream{Reply: textReply(s)} }

func TestVerdictString(t *testing.T) {
	tests := []struct {
		v    Verdict
		want string
	}{
		{Verdict{Action: Ban, Rule: "gmail-unsolicited"}, "ban (rule gmail-unsolicited)"},
		{Verdict{Action: BlockDomain, Rule: "r", Domain: "example.com"}, "block-domain (rule r, domain example.com)"},
		{Verdict{Action: Report}, "report (no rule matched)"},
		{Verdict{Action: None}, "none"},
	}
	for _, tt := range tests {
		if got := tt.v.String(); got != tt.want {
			t.Errorf("%#v.String() = %q; want %q", tt.v, got, tt.want)
		}
	}
}

// The examples in docs/enforce-rules.md parse: the first code block is a
// rules file, the second a reply filter.
func TestDocExamples(t *testing.T) {
	data, err := os.ReadFile("../../docs/enforce-rules.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(data), "```\n")
	if len(blocks) < 6 {
		t.Fatalf("docs/enforce-rules.md: %d code fences", len(blocks)-1)
	}
	rules, err := ParseRules("docs rules example", []byte(blocks[1]))
	if err != nil {
		t.Errorf("the rules example: %v", err)
	} else if got := rules.Classify(Upstream{Reply: textReply("421 4.7.28 originating from your SPF domain [example.com 30] rate limited - gsmtp"), Host: "mx.google.com"}); got != (Verdict{Action: BlockDomain, Rule: "gmail-spf-domain-rate", Domain: "example.com"}) {
		t.Errorf("the rules example: Classify = %v", got)
	}
	var filter string
	for _, b := range blocks {
		if strings.HasPrefix(b, "# A comment line.") {
			filter = b
		}
	}
	if _, err := ParseReplyFilter("docs filter example", []byte(filter)); err != nil || filter == "" {
		t.Errorf("the reply filter example: %v", err)
	}
}

func TestRulesScope(t *testing.T) {
	rs, err := ParseRules("s", []byte("rule a\n action pace\n scope recipient\n enhanced 4.2.1\nrule b\n action alert\n text quota\n scope account\n"))
	if err != nil {
		t.Fatal(err)
	}
	for text, want := range map[string]Verdict{
		"450 4.2.1 slow down": {Action: Pace, Rule: "a", Scope: ScopeRecipient},
		"550 5.4.5 quota":     {Action: Alert, Rule: "b", Scope: ScopeAccount},
	} {
		if got := rs.Classify(upstream(text)); got != want {
			t.Errorf("Classify(%q) = %v; want %v", text, got, want)
		}
	}
	_, err = ParseRules("s", []byte("rule a\n action ban\n scope recipient\nrule b\n action pace\n scope planet\n"+
		"rule c\n action pace\n scope account\n scope recipient\n"))
	for _, want := range []string{`s:1: rule "a": scope applies to pace and alert only`, `s:6: unknown scope "planet"`, `s:10: second scope in rule "c"`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRules error %v; want it to say %q", err, want)
		}
	}
}
