package filter

import (
	"strings"
	"testing"
)

// FuzzParseOutput feeds arbitrary program output and network filter reply
// lines to the parsers and checks that what they make is always a valid
// reply: a 5xx for Reject, a 4xx for TempFail, enhanced codes of the same
// class, and text that is printable ASCII on one line.
func FuzzParseOutput(f *testing.F) {
	for _, s := range []string{
		"", "ok", "ok\r\n", "<<550 5.7.1 no way>>", "[[go away]]\n<<reason>>\n",
		"noise\r\n<<452 4.3.1 try later>>\r\n", "<<550 4.7.1 odd>>", "<<>>", "<<a>>b>>",
		"550 5.7.1 go away\treason", "100 dropped", "100\tx", "451", "\t", "599 9.9.9 x",
		"<<\x00\xff\x1b[31m>>", "[[" + strings.Repeat("x", 600) + "]]",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		text, reason := parseOutput(s)
		checkPrintable(t, "parseOutput text", text)
		checkPrintable(t, "parseOutput reason", reason)
		if reason == "" && text != "" {
			t.Errorf("parseOutput(%q) = %q, empty reason", s, text)
		}
		for name, r := range map[string]Result{
			"refusal":         refusal(text, reason),
			"refusal(raw)":    refusal(s, s),
			"parseNetReply":   parseNetReply(s),
			"exitResult(1)":   exitResult(Server, 1, s),
			"exitResult(104)": exitResult(Client, 104, s),
			"sysexitResult":   sysexitResult(69, s, s),
		} {
			checkResult(t, name, s, r)
		}
	})
}

func checkPrintable(t *testing.T, what, s string) {
	t.Helper()
	if len(s) > maxText || s != strings.TrimSpace(s) {
		t.Errorf("%s %q: too long or not trimmed", what, s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			t.Errorf("%s %q: byte %#x at %d", what, s, s[i], i)
			return
		}
	}
}

func checkResult(t *testing.T, name, in string, r Result) {
	t.Helper()
	switch r.Outcome {
	case OK, Abandon:
		if r.Code != 0 || r.Enhanced != "" || r.Text != "" {
			t.Errorf("%s(%q) = %v: reply on %v", name, in, r, r.Outcome)
		}
	case Reject, TempFail:
		class := 5
		if r.Outcome == TempFail {
			class = 4
		}
		if r.Code/100 != class || !isEnhanced(r.Enhanced) || int(r.Enhanced[0]-'0') != class || r.Text == "" {
			t.Errorf("%s(%q) = %v: bad reply for %v", name, in, r, r.Outcome)
		}
		checkPrintable(t, name+" text", r.Text)
	default:
		t.Errorf("%s(%q) = %v: unknown outcome", name, in, r)
	}
	if strings.ContainsAny(r.Reason, "\r\n") {
		t.Errorf("%s(%q): reason %q spans lines", name, in, r.Reason)
	}
}

// FuzzSplitChain feeds arbitrary --filter values to the chain splitter
// (E-MailRelay's comma-separated chains, with a program's own commas and
// quoted ones kept): it never panics, every piece is trimmed and not
// empty, no piece holds more than the value did, and a value without a
// comma is one piece, itself.
func FuzzSplitChain(f *testing.F) {
	for _, s := range []string{
		"", ",", "msgid:,/usr/local/bin/addsig", "/usr/bin/spamc -d host1,host2", "copy:nodelete,hardlink",
		`"/a,b" -x`, `x\,y,exit:0`, "pipe:/bin/x -o a,b", "/bin/f --fields=From,To,exit:1", "\\", `"`, " , ,exit:103 ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		pieces := splitChain(s)
		n := 0
		for _, p := range pieces {
			if p == "" || p != strings.TrimSpace(p) {
				t.Errorf("splitChain(%q): piece %q empty or not trimmed", s, p)
			}
			n += len(p)
		}
		if n > len(s) {
			t.Errorf("splitChain(%q) = %q: more text than the value", s, pieces)
		}
		if !strings.Contains(s, ",") && strings.TrimSpace(s) != "" && (len(pieces) != 1 || pieces[0] != strings.TrimSpace(s)) {
			t.Errorf("splitChain(%q) = %q; want the value itself", s, pieces)
		}
	})
}
