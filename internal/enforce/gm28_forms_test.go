package enforce

import (
	"fmt"
	"strings"
	"testing"
)

// gm28Lines breaks words into Gmail's lines at the word indexes in cuts,
// each line with its "550-5.7.1" prefix, the last with "550 5.7.1", the
// prefix and the text apart by gap.
func gm28Lines(code int, enh string, words []string, cuts []int, gap string) []string {
	var lines []string
	start := 0
	for _, c := range append(cuts, len(words)) {
		if c <= start || c > len(words) {
			continue
		}
		lines = append(lines, strings.Join(words[start:c], " "))
		start = c
	}
	for i := range lines {
		dash := "-"
		if i == len(lines)-1 {
			dash = " "
		}
		lines[i] = fmt.Sprintf("%d%s%s%s%s", code, dash, enh, gap, lines[i])
	}
	return lines
}

// TestGm28EverySplitAndSpacing: every reply of gmail-replies.md broken
// into two lines at every word boundary (so that each phrase of a rule is
// split by a "550-5.7.1" prefix at each of its spaces), and into three
// lines around each boundary, sent as Gmail sends it (CRLF), as a client
// library hands it over (LF), as Postfix logs it (joined by a space), with
// runs of spaces and tabs after the prefixes and between the words, and
// with a lone "550 5.7.1" line ending the reply: each keeps its verdict.
func TestGm28EverySplitAndSpacing(t *testing.T) {
	rules := DefaultRules()
	n := 0
	for _, g := range loadGmailReplies(t) {
		words := strings.Fields(g.text + " a640c23a62f3a-7e5f9a5b1c2si123456766b.412 - gsmtp")
		for k := 1; k < len(words); k++ {
			forms := map[string]string{
				"crlf":       strings.Join(gm28Lines(g.code, g.enh, words, []int{k}, " "), "\r\n"),
				"lf":         strings.Join(gm28Lines(g.code, g.enh, words, []int{k}, " "), "\n"),
				"joined":     strings.Join(gm28Lines(g.code, g.enh, words, []int{k}, " "), " "),
				"gap-spaces": strings.Join(gm28Lines(g.code, g.enh, words, []int{k}, "   "), "\r\n"),
				"gap-tab":    strings.Join(gm28Lines(g.code, g.enh, words, []int{k}, "\t"), " "),
				"three":      strings.Join(gm28Lines(g.code, g.enh, words, []int{k - 1, k, k + 1}, " "), "\r\n"),
				"trailing":   strings.Join(gm28Lines(g.code, g.enh, words, []int{k}, " "), "  \r\n") + "  ",
				"wide-words": strings.Join(gm28Lines(g.code, g.enh, []string{strings.Join(words, "  \t ")}, nil, " "), "\r\n"),
				"lone-last":  strings.Join(append(gm28Lines(g.code, g.enh, words[:k], nil, " "), fmt.Sprintf("%d %s", g.code, g.enh)), "\r\n"),
			}
			forms["lone-last"] = strings.Replace(forms["lone-last"], fmt.Sprintf("%d %s ", g.code, g.enh), fmt.Sprintf("%d-%s ", g.code, g.enh), 1)
			for name, reply := range forms {
				if name == "lone-last" && k != len(words)-1 {
					continue
				}
				n++
				u, err := ParseReply(reply)
				if err != nil {
					t.Errorf("line %d %s cut %d: ParseReply(%q): %v", g.line, name, k, reply, err)
					continue
				}
				v := rules.Classify(u)
				if v.Action != g.want || v.Rule != g.rule && v.Rule != g.rule+"-text" {
					t.Errorf("line %d %s cut %d: Classify(%q) = %v (rule %s); want %v (rule %s)", g.line, name, k, reply, v.Action, v.Rule, g.want, g.rule)
				}
			}
		}
	}
	t.Logf("%d forms classified", n)
}
