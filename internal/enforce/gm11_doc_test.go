package enforce

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// testdata/gmail-replies.md is the project's gmail-replies.md, copied as
// it is: Gmail's replies, each under the heading of its verdict. The tests
// before this one read testdata/gmail-replies.txt, a transcription of it;
// this one reads the document itself, so that a reply added to it, or one
// moved to another verdict, is checked without anyone transcribing it.

// docReply is one reply of gmail-replies.md, expanded to a whole reply.
type docReply struct {
	line int    // in gmail-replies.md
	span string // as the document writes it
	code int
	enh  string
	text string // without the code prefix; <relay-ip> and <domain> filled in
	want Action
	// full: the span is a reply with its code and text (not a code or a
	// wording standing for another reply of the same bullet).
	full bool
}

// docVerdicts are the document's section headings ("## ban: ...") and the
// verdict of the replies under each. "Not rejections" is read apart.
var docVerdicts = map[string]Action{
	"ban": Ban, "block-domain": BlockDomain, "encapsulate": Encapsulate, "pace": Pace,
	"alert": Alert, "none": None, "Broken messages": None,
}

var (
	docSpan     = regexp.MustCompile("`([^`]+)`")
	docCodeSpan = regexp.MustCompile(`^([245]\d\d)[- ]([245]\.\d{1,3}\.\d{1,3})?(?:\s+(.*))?$`)
)

// docFill puts the test's values for the document's placeholders.
func docFill(s string) string {
	return strings.NewReplacer("<relay-ip>", relayIP, "<domain>", "example.com").Replace(s)
}

// readDocReplies reads every reply of testdata/gmail-replies.md, with the
// verdict of its section. A span with a code and a text is a reply; a span
// with a code alone ("and as `421-4.7.0`") is the bullet's first reply with
// that code; a span with a text alone ("also `Gmail has detected that
// ...`", "`your DKIM domain [<domain> 30]`") is another wording of it,
// spliced into the first reply's text where "..." or the shared words say.
func readDocReplies(t *testing.T) (replies []docReply, notRefusals []string) {
	t.Helper()
	data, err := os.ReadFile("testdata/gmail-replies.md")
	if err != nil {
		t.Fatal(err)
	}
	section := ""
	for i, line := range strings.Split(string(data), "\n") {
		n := i + 1
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section, _, _ = strings.Cut(h, ":")
			if _, known := docVerdicts[section]; !known && section != "Not rejections" {
				t.Fatalf("gmail-replies.md:%d: a section this test does not know: %q", n, h)
			}
			continue
		}
		// Replies are on bullets ("- `550-5.7.1 ...`"), or open a paragraph
		// ("`550-5.7.1 Messages missing ...`, `...`: ..."); other prose
		// names settings (`[dkim]`).
		if section == "" || !strings.HasPrefix(line, "- ") && !strings.HasPrefix(line, "`") {
			continue
		}
		if section == "Not rejections" {
			for _, m := range docSpan.FindAllStringSubmatch(line, -1) {
				notRefusals = append(notRefusals, docFill(m[1]))
			}
			continue
		}
		var base *docReply
		for _, m := range docSpan.FindAllStringSubmatch(line, -1) {
			span := docFill(m[1])
			r := docReply{line: n, span: m[1], want: docVerdicts[section]}
			if c := docCodeSpan.FindStringSubmatch(span); c != nil {
				r.code, _ = strconv.Atoi(c[1])
				r.enh, r.text = c[2], c[3]
				r.full = r.text != ""
			} else {
				r.text = span
			}
			switch {
			case r.full:
				if base == nil {
					b := r
					base = &b
				}
			case base == nil:
				t.Fatalf("gmail-replies.md:%d: %q comes before any whole reply of its line", n, m[1])
			case r.code != 0: // another code for the first reply
				r.text = base.text
			default: // another wording of the first reply
				r.code, r.enh = base.code, base.enh
				r.text = docSplice(base.text, r.text)
			}
			replies = append(replies, r)
		}
	}
	if len(replies) == 0 {
		t.Fatal("gmail-replies.md: no replies")
	}
	return replies, notRefusals
}

// docSplice puts frag, another wording of a part of base, into base: a
// frag ending in "..." continues as base does after frag's last words, one
// starting with "..." is preceded by what comes before its first words in
// base, and one with neither replaces the words of base from its first
// word to its last. A frag that shares no words with base is taken alone.
func docSplice(base, frag string) string {
	bw, fw := strings.Fields(base), strings.Fields(frag)
	lead := len(fw) > 0 && fw[0] == "..."
	trail := len(fw) > 0 && fw[len(fw)-1] == "..."
	if lead {
		fw = fw[1:]
	}
	if trail && len(fw) > 0 {
		fw = fw[:len(fw)-1]
	}
	if len(fw) == 0 {
		return base
	}
	var before, after []string
	if !lead && !trail {
		i, p := docFind(bw, fw, true)
		j, s := docFind(bw, fw, false)
		if p == 0 || s == 0 || j+s <= i {
			return frag
		}
		before, after = bw[:i], bw[j+s:]
	}
	if lead {
		if i, p := docFind(bw, fw, true); p > 0 {
			before = bw[:i]
		}
	}
	if trail {
		if j, s := docFind(bw, fw, false); s > 0 {
			after = bw[j+s:]
		}
	}
	out := append(append(append([]string{}, before...), fw...), after...)
	return strings.Join(out, " ")
}

// docFind finds in bw the longest run of fw's first words (prefix) or last
// words (!prefix), compared without regard to case and punctuation at their
// ends, and returns where it starts in bw and its length (0: none).
func docFind(bw, fw []string, prefix bool) (at, n int) {
	norm := func(s string) string { return strings.ToLower(strings.Trim(s, ".,:;")) }
	for k := len(fw); k > 0; k-- {
		run := fw[:k]
		if !prefix {
			run = fw[len(fw)-k:]
		}
	next:
		for i := 0; i+k <= len(bw); i++ {
			for j := range run {
				if norm(bw[i+j]) != norm(run[j]) {
					continue next
				}
			}
			return i, k
		}
	}
	return 0, 0
}

// TestGm11GmailRepliesDocument: every reply of gmail-replies.md itself,
// as Gmail sends it (lines of several widths, each with its code prefix)
// and as Postfix logs it (joined, and inside "host H[A] said: ... (in reply
// to end of DATA command)"), with each of its wordings and codes, gets the
// verdict of the section it is under; a 2xx under "Not rejections" gets
// none.
func TestGm11GmailRepliesDocument(t *testing.T) {
	replies, notRefusals := readDocReplies(t)
	rules := DefaultRules()
	for _, r := range replies {
		for _, width := range []int{1000, 76, 40} {
			lines := gmailLines(r.code, r.enh, r.text, width)
			for _, form := range []string{
				strings.Join(lines, "\r\n"),
				strings.Join(lines, " "),
				"host gmail-smtp-in.l.google.com[142.250.102.27] said: " + strings.Join(lines, " ") + " (in reply to end of DATA command)",
			} {
				u, err := ParseReply(form)
				if err != nil {
					t.Fatalf("gmail-replies.md:%d: ParseReply(%q): %v", r.line, form, err)
				}
				if got := rules.Classify(u); got.Action != r.want {
					t.Errorf("gmail-replies.md:%d `%s`: %v for %q; the document says %v", r.line, r.span, got, form, r.want)
				}
			}
		}
	}
	if len(notRefusals) == 0 {
		t.Error("gmail-replies.md: no reply under \"Not rejections\"")
	}
	for _, s := range notRefusals {
		if c := docCodeSpan.FindStringSubmatch(s); c == nil || c[1][0] != '2' {
			continue
		}
		if got := rules.Classify(upstream(s)); got.Action != None {
			t.Errorf("gmail-replies.md (Not rejections) %q: %v; want none", s, got)
		}
	}
}

// TestGm11GmailRepliesTranscribed: testdata/gmail-replies.txt, which the
// other tests (and the e2e suite) read, holds gmail-replies.md line for
// line: every whole reply of the document is there, under the same
// verdict, with the same code and enhanced code, in a text that the
// document's (its "..." standing for any words) matches; and every line of
// it stands for a reply of the document under the same verdict with the
// same codes.
func TestGm11GmailRepliesTranscribed(t *testing.T) {
	replies, _ := readDocReplies(t)
	txt := loadGmailReplies(t)
	norm := func(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }
	for _, r := range replies {
		if !r.full {
			continue
		}
		parts := strings.Split(norm(r.text), "...")
		for i := range parts {
			parts[i] = regexp.QuoteMeta(strings.TrimSpace(parts[i]))
		}
		pat := regexp.MustCompile("^" + strings.Join(parts, ".*"))
		found := false
		for _, g := range txt {
			if g.want == r.want && g.code == r.code && g.enh == r.enh && pat.MatchString(norm(g.text)) {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("gmail-replies.md:%d `%s` (%v): no line of testdata/gmail-replies.txt has it", r.line, r.span, r.want)
		}
	}
	for _, g := range txt {
		found := false
		for _, r := range replies {
			if g.want == r.want && g.code == r.code && g.enh == r.enh {
				found = true
				break
			}
		}
		if !found {
			t.Errorf("gmail-replies.txt:%d (%v %d %s %.40s): gmail-replies.md has no such reply under %v", g.line, g.want, g.code, g.enh, g.text, g.want)
		}
	}
}
