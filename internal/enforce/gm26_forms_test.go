package enforce

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// gm26Fold is text broken into Gmail's lines of at most width characters
// (never inside a word), each with its prefix, joined as Postfix logs
// them; sep joins the lines.
func gm26Fold(code int, enh, text string, width int, sep string) string {
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
		dash := "-"
		if i == len(lines)-1 {
			dash = " "
		}
		lines[i] = fmt.Sprintf("%d%s%s %s", code, dash, enh, lines[i])
	}
	return strings.Join(lines, sep)
}

// TestGM26GmailForms: every reply of gmail-replies.md in forms Gmail's
// text takes besides the ones TestGm22GmailVariants makes: all in lower
// case, re-wrapped at 20 and 30 columns, lines ending in a tab, one line
// with no continuation prefixes, continuation lines without the enhanced
// code, and Gmail's other help-link forms (answer/N#topic, http://, no
// scheme, /a/ instead of /mail/, ?p=X&hl=en). Each is classified as the
// document says: the same verdict and rule; with continuation lines
// lacking the enhanced code (no form of Gmail's), the same verdict by any
// rule, or a report for the rules that take a domain from the text.
func TestGM26GmailForms(t *testing.T) {
	rules := DefaultRules()
	link := regexp.MustCompile(`https://support\.google\.com/mail/\?p=([A-Za-z]+)`)
	n := 0
	for _, g := range loadGmailReplies(t) {
		text := g.text + " a640c23a62f3a-7e5f9a5b1c2si123456766b.412 - gsmtp"
		forms := map[string]string{
			"lower":        strings.ToLower(gm26Fold(g.code, g.enh, text, 70, " ")),
			"lower-fold30": gm26Fold(g.code, g.enh, strings.ToLower(text), 30, " "),
			"fold20":       gm26Fold(g.code, g.enh, text, 20, " "),
			"tab-ended":    gm26Fold(g.code, g.enh, text, 50, "\t "),
			"one-line":     fmt.Sprintf("%d %s %s", g.code, g.enh, text),
			"no-enh-lines": strings.ReplaceAll(gm26Fold(g.code, g.enh, text, 60, " "), fmt.Sprintf("%d-%s ", g.code, g.enh), fmt.Sprintf("%d-", g.code)),
			"url-answer":   gm26Fold(g.code, g.enh, link.ReplaceAllString(text, "https://support.google.com/mail/answer/81126#$1"), 76, " "),
			"url-http":     gm26Fold(g.code, g.enh, strings.ReplaceAll(text, "https://", "http://"), 76, " "),
			"url-bare":     gm26Fold(g.code, g.enh, strings.ReplaceAll(text, "https://", ""), 76, " "),
			"url-a":        gm26Fold(g.code, g.enh, strings.ReplaceAll(text, "support.google.com/mail/", "support.google.com/a/"), 76, " "),
			"url-hl":       gm26Fold(g.code, g.enh, link.ReplaceAllString(text, "https://support.google.com/mail/?p=${1}&hl=en"), 76, " "),
		}
		for name, reply := range forms {
			n++
			u, err := ParseReply(reply)
			if err != nil {
				t.Errorf("line %d %s: ParseReply(%q): %v", g.line, name, reply, err)
				continue
			}
			v := rules.Classify(u)
			if name == "no-enh-lines" {
				// Not Gmail's form: any rule of the same verdict, or a
				// report where a domain is taken from the text (those
				// rules want Gmail's code on the line that names it).
				if v.Action != g.want && (v.Action != Report || g.domain == "") {
					t.Errorf("line %d %s: Classify(%q) = %v (rule %s); want %v", g.line, name, reply, v.Action, v.Rule, g.want)
				}
				continue
			}
			if v.Action != g.want || v.Rule != g.rule && v.Rule != g.rule+"-text" {
				t.Errorf("line %d %s: Classify(%q) = %v (rule %s); want %v (rule %s)", g.line, name, reply, v.Action, v.Rule, g.want, g.rule)
			}
		}
	}
	t.Logf("%d forms classified", n)
}

// TestGM26FilterBusyBoxSyslog: BusyBox's syslogd writes the facility and
// priority between the host and the tag ("relay user.notice
// relay-enforcer[812]: bannable ..."), where fail2ban's common prefix
// expects the tag: the shipped filter found no ban line in such a log,
// and postfix-enforcer's bans (sent to syslog) were never enforced. Lines
// of other programs still ban nothing.
func TestGM26FilterBusyBoxSyslog(t *testing.T) {
	bin, err := exec.LookPath("fail2ban-regex")
	if err != nil {
		harness.Missing(t, "fail2ban-regex not installed (scripts/test-deps.sh)")
	}
	common := "/etc/fail2ban/filter.d/common.conf"
	if _, err := os.Stat(common); err != nil {
		harness.Missing(t, "fail2ban's %s is missing", common)
	}
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "filter.d"), 0o755)
	for src, dst := range map[string]string{common: "common.conf", fail2banFilterFile: "relaykeeper.conf"} {
		data, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "filter.d", dst), data, 0o644)
	}
	log := filepath.Join(dir, "messages")
	os.WriteFile(log, []byte(
		"Nov 22 10:00:10 relay user.notice relay-enforcer[812]: bannable gmail-unsolicited queue 4ABC123DEF to bob@gmail.com 203.0.113.6\n"+
			"Nov 22 10:00:11 relay mail.info relay-enforcer[812]: bannable gmail-unsolicited queue 4ABC123DF0 to bob@gmail.com 2001:db8:1:2::7\n"+
			"Nov 22 10:00:11 relay mail.info relay-enforcer[812]: bannable-network gmail-unsolicited queue 4ABC123DF0 to bob@gmail.com 2001:db8:1:2::/64\n"+
			"Nov 22 10:00:12 relay relay-enforcer[812]: bannable gmail-unsolicited queue 4ABC123DF1 to bob@gmail.com 203.0.113.8\n"+
			"Nov 22 10:00:13 relay user.notice sshd[99]: bannable x 198.51.100.98\n"+
			"Nov 22 10:00:13 relay x.y relay-enforcer[812]: bannable x 198.51.100.99\n"), 0o644)
	out, err := exec.Command(bin, "-o", "ip", log, filepath.Join(dir, "filter.d", "relaykeeper.conf")).CombinedOutput()
	if err != nil {
		t.Fatalf("fail2ban-regex: %v\n%s", err, out)
	}
	if got, want := strings.Join(strings.Fields(string(out)), " "), "203.0.113.6 2001:db8:1:2::7 2001:db8:1:2::/64 203.0.113.8"; got != want {
		t.Errorf("fail2ban-regex found %q; want %q", got, want)
	}
}
