package table

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRegexpTable(t *testing.T) {
	file := `
# regexp_table(5) example, slightly extended.
/[%!@].*[%!@]/                550 Sender-specified routing rejected
/^postmaster@/                OK
if !/^owner-/
/^(.*)-outgoing@(.*)$/        550 Use ${1}@${2} instead
endif
/^Case@Sensitive\.example$/i  case-sensitive
/^(ab)(c)?x$/                 got $1 and [$2] and $(1)$$
/^line1$/m                    multiline
~^tilde/delim$~               tilde
/a\/b/                        escaped-delim
/^first/!/second$/            old-style
!/\./                         no-dot
`
	tb := mustOpen(t, "regexp:"+writeFile(t, "access.regexp", file))
	for _, tc := range []struct {
		key, want string
		wantOK    bool
	}{
		{"a%b@c", "550 Sender-specified routing rejected", true},
		{"postmaster@example.com", "OK", true},
		{"POSTMASTER@example.com", "OK", true}, // case-insensitive by default
		{"list-outgoing@example.com", "550 Use list@example.com instead", true},
		{"owner-list-outgoing@example.com", "", false}, // inside a false if
		{"Case@Sensitive.example", "case-sensitive", true},
		{"case@sensitive.example", "", false}, // the i flag turns case-sensitivity on
		{"abx", "got ab and [] and ab$", true},
		{"abcx", "got ab and [c] and ab$", true},
		{"x\nline1\ny", "multiline", true},
		{"tilde/delim", "tilde", true},
		{"a/b", "escaped-delim", true},
		{"first.and.second", "", false},
		{"first.and.third", "old-style", true},
		{"nodot", "no-dot", true},
	} {
		got, ok := tb.Lookup(tc.key)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tc.key, got, ok, tc.want, tc.wantOK)
		}
	}
}

// Without m, "." matches a newline in regexp tables (POSIX without
// REG_NEWLINE); POSIX tables match leftmost-longest.
func TestRegexpPOSIXSemantics(t *testing.T) {
	tb := mustOpen(t, "regexp:"+writeFile(t, "r", "/^a.b$/ dot\n/^(a|ab)(c|bcd)$/ [$1][$2]\n"))
	if got, _ := tb.Lookup("a\nb"); got != "dot" {
		t.Errorf("Lookup(%q) = %q; want dot", "a\nb", got)
	}
	if got, _ := tb.Lookup("abcd"); got != "[a][bcd]" {
		t.Errorf("Lookup(%q) = %q; want [a][bcd]", "abcd", got)
	}
	nl := mustOpen(t, "regexp:"+writeFile(t, "r", "/^a.b$/m dot\n"))
	if got, ok := nl.Lookup("a\nb"); ok {
		t.Errorf("with m, Lookup(%q) = %q; want no match", "a\nb", got)
	}
}

func TestPCRETable(t *testing.T) {
	file := `
/^(?:ab|cd)+$/          group
/^a.b$/                 dotall-default
/^c.d$/s                no-dotall
/ x y # a comment/x     extended
/[ ]z/x                 space-in-class
/^a+?b/U                ungreedy
/b/A                    anchored
if /^if\./
if /\.nested$/
/./                     nested
endif
/./                     outer
endif
/^noddy@my\.domain$/
 550 This user is a funny one. You really don't want to send mail to
 them as it only makes their head spin.
/^dollar$/              costs $$5
`
	tb := mustOpen(t, "pcre:"+writeFile(t, "access.pcre", file))
	for _, tc := range []struct {
		key, want string
		wantOK    bool
	}{
		{"abcdab", "group", true},
		{"a\nb", "dotall-default", true},
		{"c\nd", "", false},
		{"cxd", "no-dotall", true},
		{"xy", "extended", true},
		{" z", "space-in-class", true},
		{"bb", "anchored", true},
		{"if.nested", "nested", true},
		{"if.other", "outer", true},
		{"noddy@my.domain", "550 This user is a funny one. You really don't want to send mail to them as it only makes their head spin.", true},
		{"dollar", "costs $5", true},
	} {
		got, ok := tb.Lookup(tc.key)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("Lookup(%q) = %q, %v; want %q, %v", tc.key, got, ok, tc.want, tc.wantOK)
		}
	}
	anchored := mustOpen(t, "pcre:{ {/b/A anchored}, {/b/ floating} }")
	if got, _ := anchored.Lookup("ab"); got != "floating" {
		t.Errorf("A flag: Lookup(%q) = %q; want floating", "ab", got)
	}
	lazy := mustOpen(t, "pcre:{ {/^(a+)/U $1} }")
	if got, _ := lazy.Lookup("aaa"); got != "a" {
		t.Errorf("U flag: Lookup(%q) = %q; want a", "aaa", got)
	}
}

func TestRegexpInlineSpec(t *testing.T) {
	tb := mustOpen(t, "regexp:{ { /^a/ first }, { /^b/ REJECT no, thanks } }")
	if got, _ := tb.Lookup("bz"); got != "REJECT no, thanks" {
		t.Errorf("Lookup(%q) = %q; want %q", "bz", got, "REJECT no, thanks")
	}
	if _, err := Open("pcre:{ {/(?<=a)b/ x} }"); err == nil || !strings.Contains(err.Error(), "pcre:{ {/(?<=a)b/ x} }:1: ") {
		t.Errorf("Open(inline lookbehind) = %v; want an error at entry 1", err)
	}
}

// Every problem of a pattern file is reported with FILE:LINE.
func TestRegexpErrors(t *testing.T) {
	file := strings.Join([]string{
		`/(a)\1/           backreference`,   // 1
		`/(?=a)/           lookahead`,       // 2
		`/a/q              bad flag`,        // 3
		`/a/s              s is pcre only`,  // 4
		`/a/x              basic syntax`,    // 5
		`/a/`,                               // 6 no result
		`/unclosed         result`,          // 7
		`/(a)/             $2 out of range`, // 8
		`!/(a)/            negated $1`,      // 9
		`/a/               $x non-numeric`,  // 10
		`/a/               lone $`,          // 11
		`/a/               ${1 truncated`,   // 12
		`endif`,                             // 13
		`junk line`,                         // 14
		`if /a/`,                            // 15
		`/ok/              fine`,            // 16
		`aif /a/ x`,                         // 17
		`/a/               $0 zero`,         // 18
	}, "\n")
	path := writeFile(t, "bad.regexp", file)
	_, err := Open("regexp:" + path)
	if err == nil {
		t.Fatal("Open succeeded; want errors")
	}
	var lines []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		msg := e.Error()
		if !strings.HasPrefix(msg, path+":") {
			t.Errorf("error %q does not start with %s:", msg, path)
			continue
		}
		lines = append(lines, strings.SplitN(strings.TrimPrefix(msg, path+":"), ":", 2)[0])
	}
	want := []string{"1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "17", "18", "18"}
	if diff := cmp.Diff(want, lines); diff != "" {
		t.Errorf("error lines mismatch (-want +got):\n%s\nerrors:\n%v", diff, err)
	}
	for _, frag := range []string{
		"RE2 cannot compile it", "unknown pattern flag 'q'", "unknown pattern flag 's'",
		"basic regular expression", "missing result", "no closing pattern delimiter",
		"$2 in the result, but the pattern has only 1", "negated pattern",
		`non-numeric substitution $"x"`, "lone $", "truncated substitution",
		"endif without matching if", "unrecognized line", "missing endif", "out of range",
	} {
		if !strings.Contains(err.Error(), frag) {
			t.Errorf("errors do not mention %q:\n%v", frag, err)
		}
	}
}

func TestRegexpWarnings(t *testing.T) {
	tb := mustOpen(t, "pcre:"+writeFile(t, "w", "if /a/ extra\n/b/ x\nendif extra\n"))
	if got := len(tb.Warnings()); got != 2 {
		t.Errorf("Warnings() = %q; want 2 (extra text after if and endif)", tb.Warnings())
	}
}

func TestStripFreeSpacing(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a b", "ab"},
		{`a\ b`, `a\ b`},
		{"[ ]x", "[ ]x"},
		{"[] ]x", "[] ]x"},
		{"[^] ]x", "[^] ]x"},
		{"[[:space:] ] y", "[[:space:] ]y"},
		{"a # comment", "a"},
		{`a\#b`, `a\#b`},
	} {
		if got := stripFreeSpacing(tc.in); got != tc.want {
			t.Errorf("stripFreeSpacing(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}
