package headercheck

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

func TestOpenActionErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rules    string
		inHeader bool
		want     []string // each a line of the error, after "FILE:"
	}{
		{
			name:     "unknown action names its line",
			rules:    "# comment\n/^Subject:/ IGNORE\n\n/^X-A:/ FROB it\n",
			inHeader: true,
			want:     []string{`4: unknown action "FROB"; want ` + knownActions},
		},
		{
			name:     "numeric codes are access(5) only",
			rules:    "/^Subject: buy/ 550 no ads\n",
			inHeader: true,
			want:     []string{"1: header_checks(5) has no numeric reply codes; write REJECT 5.7.1 text (or 4.7.1 for a temporary failure)"},
		},
		{
			name:     "every problem, on the first line of a continued rule",
			rules:    "/^A:/\n  FILTER nocolon\n/^B:/ REDIRECT nobody\n/^C:/ BCC\n/^D:/ REPLACE not a header\n/^E:/ PREPEND\n/^F:/ REJECT 2.0.0 fine\n/^G:/ DEFER later\n",
			inHeader: true,
			want: []string{
				"1: FILTER requires transport:destination",
				"3: REDIRECT requires user@domain",
				"4: BCC requires user@domain",
				`5: REPLACE text "not a header" is not a header; want "Name: value"`,
				"6: PREPEND requires text",
				"7: REJECT status code 2.0.0: want 4.x.x or 5.x.x",
				`8: unknown action "DEFER"; want ` + knownActions,
			},
		},
		{
			name:  "body_checks REPLACE and PREPEND take any text",
			rules: "/^a/ REPLACE not a header\n/^b/ PREPEND neither\n",
		},
		{
			name:     "substitutions are checked when they are made",
			rules:    "/^(\\S+): (.*)$/ $2\n/^X: (.*)/ REPLACE $1\n/^Y: (.*)/ FILTER $1\n/^Z: (.*)/ REJECT $1\n/^W: (.*)/ ignore $1\n",
			inHeader: true,
		},
		{
			name:     "case, synonyms and text after actions that take none",
			rules:    "/^a/ dunno\n/^b/ Ok whatever\n/^c/ ignore this\n/^d/ Warn\n/^e/ info x\n/^f/ hold\n/^g/ discard\n/^h/ pass\n/^i/ strip\n",
			inHeader: true,
		},
		{
			name:     "if/endif and negated rules",
			rules:    "if /^X-/\n!/^X-Keep:/ IGNORE\n/^X-A:/!/^X-A: ok/ NOPE\nendif\n",
			inHeader: true,
			want:     []string{`3: unknown action "NOPE"; want ` + knownActions},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeTable(t, "checks", tc.rules)
			var err error
			if tc.inHeader {
				_, err = Open("pcre:"+path, "")
			} else {
				_, err = Open("", "regexp:"+path)
			}
			var got []string
			if err != nil {
				for _, line := range strings.Split(err.Error(), "\n") {
					line = strings.TrimPrefix(strings.TrimPrefix(line, "policy.header_checks: "), "policy.body_checks: ")
					got = append(got, strings.TrimPrefix(line, path+":"))
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Open error lines (-want +got):\n%s", diff)
			}
			var pe *table.ParseError
			if err != nil && !errors.As(err, &pe) {
				t.Errorf("Open error %v is not a table.ParseError", err)
			}
		})
	}
}

// A file with syntax errors and action errors reports both.
func TestOpenReportsEverything(t *testing.T) {
	path := writeTable(t, "checks", "/^A:/ FROB\n/(unclosed/ IGNORE\n")
	_, err := Open("pcre:"+path, "")
	if err == nil {
		t.Fatal("Open succeeded; want errors")
	}
	for _, want := range []string{path + ":1: unknown action", path + ":2: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not contain %q", err, want)
		}
	}
}

func TestOpenSpecErrors(t *testing.T) {
	path := writeTable(t, "checks", "/a/ IGNORE\n")
	for _, tc := range []struct {
		header, body string
		want         string
	}{
		{"hash:" + path, "", "want regexp:/path or pcre:/path"},
		{path, "", "want regexp:/path or pcre:/path"},
		{"", "cidr:" + path, "want regexp:/path or pcre:/path"},
		{"pcre:{ {/a/ IGNORE} }", "", "rules in the spec are not supported"},
		{"pcre:" + path + ".missing", "", "no such file"},
		{"proxy:pcre:" + path, "regexp:" + path + ".missing", "no such file"},
	} {
		_, err := Open(tc.header, tc.body)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q, %q) = %v; want an error containing %q", tc.header, tc.body, err, tc.want)
		}
	}
	if _, err := Open(" proxy:pcre:"+path+" ", "regexp:"+path); err != nil {
		t.Errorf("Open with proxy: and spaces: %v", err)
	}
}

// rewrite replaces a table file and moves its modification time, so that
// a rewrite within the same clock tick is seen as a change.
func rewrite(t *testing.T, path, content string, bump int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	when := time.Now().Add(time.Duration(bump) * time.Minute)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

func TestReload(t *testing.T) {
	path := writeTable(t, "header_checks", "/^X-Old:/ IGNORE\n")
	c := mustOpenChecks(t, "pcre:"+path, "")
	msg := crlf("X-Old: 1", "X-New: 2", "", "")
	check := func(step, want string) {
		t.Helper()
		if got, _ := apply(t, c, msg); got != want {
			t.Errorf("%s: Apply output = %q; want %q", step, got, want)
		}
	}
	check("opened", crlf("X-New: 2", "", ""))

	if err := c.Reload(); err != nil {
		t.Errorf("Reload of an unchanged file: %v", err)
	}

	// A bad action keeps the old table in force, and says so on every call.
	rewrite(t, path, "/^X-New:/ IGNORE\n/^X-Old:/ FROB\n", 1)
	for i := 0; i < 2; i++ {
		err := c.Reload()
		if err == nil || !strings.Contains(err.Error(), path+":2: unknown action") {
			t.Errorf("Reload #%d = %v; want %s:2: unknown action", i+1, err, path)
		}
	}
	check("after a bad reload", crlf("X-New: 2", "", ""))

	// So does a syntax error, which the table package finds.
	rewrite(t, path, "/(X-New:/ IGNORE\n", 2)
	if err := c.Reload(); err == nil || !strings.Contains(err.Error(), path+":1:") {
		t.Errorf("Reload of a bad pattern = %v; want %s:1: ...", err, path)
	}
	check("after a bad pattern", crlf("X-New: 2", "", ""))

	rewrite(t, path, "/^X-New:/ IGNORE\n", 3)
	if err := c.Reload(); err != nil {
		t.Errorf("Reload of a fixed file: %v", err)
	}
	check("after a good reload", crlf("X-Old: 1", "", ""))

	if err := (*Checks)(nil).Reload(); err != nil {
		t.Errorf("nil Reload: %v", err)
	}
}

func TestRuleResults(t *testing.T) {
	got := ruleResults("# c\r\n/a/ R1\r\n  more\r\n\r\nif /x/\n!/b\\/c/i R2 \nendif\n/d/!/e/ R3\n/f/ !/g/ R4\n|h| R5\n/unclosed R6\nword R7\n/x/\n")
	want := []rule{{2, "R1  more"}, {6, "R2"}, {8, "R3"}, {9, "!/g/ R4"}, {10, "R5"}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(rule{})); diff != "" {
		t.Errorf("ruleResults (-want +got):\n%s", diff)
	}
}

func TestVerdictString(t *testing.T) {
	for v, want := range map[Verdict]string{Accept: "accept", Reject: "reject", Discard: "discard", Hold: "hold", 9: "Verdict(9)"} {
		if got := v.String(); got != want {
			t.Errorf("Verdict(%d).String() = %q; want %q", int(v), got, want)
		}
	}
}
