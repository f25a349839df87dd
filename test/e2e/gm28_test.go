package e2e

import (
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
