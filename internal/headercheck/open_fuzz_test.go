package headercheck

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// FuzzOpenChecks writes arbitrary bytes as a header_checks and a
// body_checks file (regexp: and pcre:) and opens them: every problem must
// be a table.ParseError that names the file and a line inside it, and a
// table that opens must apply to a message without error or panic.
func FuzzOpenChecks(f *testing.F) {
	for _, s := range []string{
		"/^Subject: spam/ REJECT 5.7.1 no spam\n",
		"/^X-A:/ IGNORE\n/^X-B:/ REPLACE X-B: fixed\n/^X-C:/ PREPEND X-D: d\n",
		"/^(X-.*)/ WARN saw $1\n/^X-Bcc:/ BCC a@example.org\n/^X-R:/ REDIRECT nobody\n",
		"if /^X-/\n/^X-Hold:/ HOLD\nendif\n/x/ 550 numeric\n",
		"/(/ DUNNO\n", "/a/\n", "/a/ FILTER smtp:[127.0.0.1]:10025\n/b/ REPLACE not a header\n",
		"!/^Subject:/ INFO no subject\n/^Subject:/i REJECT 2.0.0 odd\r\n",
		"/^\\s*$/ STRIP\n\x00\xff\n", "  continued without a rule\n", "/" + strings.Repeat("a", 5000) + "/ DISCARD\n",
		"/((a*)*)*b/ PASS\n/^X: (.*)/ REPLACE X: $1$1$1$1\n",
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	msgs := []string{
		"Subject: spam\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3\r\nX-Bcc: x\r\nX-R: y\r\nX-Hold: z\r\nX: " + strings.Repeat("a", 300) + "\r\n\r\nbody b\r\n",
		"Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\nX-A: in part\r\n\r\naaaa\r\n--q--\r\n",
		"no header at all\n", "",
	}
	f.Fuzz(func(t *testing.T, data []byte, pcre bool) {
		if len(data) > 64<<10 {
			return
		}
		path := filepath.Join(t.TempDir(), "checks")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		typ := "regexp:"
		if pcre {
			typ = "pcre:"
		}
		lines := bytes.Count(data, []byte("\n")) + 1
		for _, specs := range [][2]string{{typ + path, ""}, {"", typ + path}} {
			c, err := Open(specs[0], specs[1])
			if err != nil {
				checkNamesLine(t, err, path, lines)
				continue
			}
			for _, m := range msgs {
				var out bytes.Buffer
				res, err := c.Apply(strings.NewReader(m), &out)
				if err != nil {
					t.Fatalf("Apply(%q) with a table that opened: %v", m, err)
				}
				if strings.ContainsAny(res.Text+res.Match, "\r\n") {
					t.Fatalf("reply or match text spans lines: %+v", res)
				}
			}
		}
	})
}

// checkNamesLine fails unless every error joined in err is a
// table.ParseError for path at a line from 1 to lines.
func checkNamesLine(t *testing.T, err error, path string, lines int) {
	t.Helper()
	for _, e := range flatten(err) {
		var pe *table.ParseError
		if !errors.As(e, &pe) {
			t.Fatalf("error %q (%T) is not a ParseError naming a line", e, e)
		}
		if pe.File != path || pe.Line < 1 || pe.Line > lines {
			t.Fatalf("error %q names %s:%d; want %s:1..%d", e, pe.File, pe.Line, path, lines)
		}
	}
}

// flatten returns the leaves of a tree of joined errors, looking through
// wrappers such as policy.KeyError.
func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	if _, ok := err.(*table.ParseError); !ok {
		if u := errors.Unwrap(err); u != nil {
			return flatten(u)
		}
	}
	return []error{err}
}

// TestFuzz26LongSpecClipped: a header_checks value of a megabyte (a file
// pasted into the config by mistake) is quoted clipped in the error.
func TestFuzz26LongSpecClipped(t *testing.T) {
	for _, spec := range []string{strings.Repeat("x", 1<<20), "pcre:{" + strings.Repeat("x", 1<<20)} {
		_, err := Open(spec, "")
		if err == nil || len(err.Error()) > 1000 {
			t.Errorf("Open(%d bytes): error of %d bytes: %.200q", len(spec), len(fmt.Sprint(err)), fmt.Sprint(err))
		}
	}
}
