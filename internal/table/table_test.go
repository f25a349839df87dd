package table

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// writeFile writes a table file into a fresh temporary directory.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func mustOpen(t *testing.T, spec string) *Table {
	t.Helper()
	tb, err := Open(spec)
	if err != nil {
		t.Fatalf("Open(%q): %v", spec, err)
	}
	return tb
}

// The example from the brief: hash:/etc/postfix/sender_access reads the
// text file itself.
func TestSenderAccessExample(t *testing.T) {
	path := writeFile(t, "sender_access", "example.com REJECT\n")
	tb := mustOpen(t, "hash:"+path)
	for _, tc := range []struct {
		addr   string
		want   string
		wantOK bool
	}{
		{"spammer@example.com", "REJECT", true},
		{"a@sub.example.com", "REJECT", true},
		{"a@example.org", "", false},
	} {
		got, ok := tb.LookupAddress(tc.addr)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("LookupAddress(%q) = %q, %v; want %q, %v", tc.addr, got, ok, tc.want, tc.wantOK)
		}
	}
}

func TestSpecTypes(t *testing.T) {
	path := writeFile(t, "access", "Key value\n")
	for _, spec := range []string{
		path, "hash:" + path, "btree:" + path, "lmdb:" + path, "texthash:" + path,
		"cdb:" + path, "dbm:" + path, "sdbm:" + path, "proxy:hash:" + path,
		"  hash:" + path + "  ",
	} {
		tb := mustOpen(t, spec)
		if got, ok := tb.Lookup("KEY"); got != "value" || !ok {
			t.Errorf("%s: Lookup(%q) = %q, %v; want %q, true", spec, "KEY", got, ok, "value")
		}
		if tb.Path() != path {
			t.Errorf("%s: Path() = %q; want %q", spec, tb.Path(), path)
		}
	}
}

func TestSpecErrors(t *testing.T) {
	path := writeFile(t, "access", "a b\n")
	for _, tc := range []struct {
		spec string
		want string
	}{
		{"", "empty table spec"},
		{"mysql:/etc/postfix/mysql.cf", `unsupported table type "mysql"`},
		{"ldap:" + path, `unsupported table type "ldap"`},
		{"hash:", "missing file name"},
		{"hash:" + path + ".db", "not the .db index"},
		{"hash:" + path + ".missing", "no such file"},
		{"hash:" + filepath.Dir(path), "is a directory"},
		{"inline:a=b", "want inline:{ key=value, ... }"},
		{"inline:{ }", "empty inline table"},
		{"inline:{ a }", `missing '=' in "a"`},
		{"inline:{ a= }", `missing value in "a="`},
		{"inline:{ a = b }", `:2: missing key in "="`}, // spaces need { a = b }
		{"regexp:{ /a/ OK }", "must be enclosed in { }"},
		{"regexp:{ {/a/ OK} ", "unbalanced braces"},
	} {
		_, err := Open(tc.spec)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v; want an error containing %q", tc.spec, err, tc.want)
		}
	}
}

func TestStaticAndInline(t *testing.T) {
	for _, tc := range []struct {
		spec, key, want string
		wantOK          bool
	}{
		{"static:OK", "anything", "OK", true},
		{"static:{ REJECT go away }", "x", "REJECT go away", true},
		{"inline:{ a.example=OK, B.example=REJECT }", "b.EXAMPLE", "REJECT", true},
		{"inline:{ a.example=OK, { c.example = REJECT no, thanks } }", "c.example", "REJECT no, thanks", true},
		{"inline:{a=1,a=2}", "a", "2", true},
	} {
		tb := mustOpen(t, tc.spec)
		got, ok := tb.Lookup(tc.key)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("%s: Lookup(%q) = %q, %v; want %q, %v", tc.spec, tc.key, got, ok, tc.want, tc.wantOK)
		}
	}
	// static answers every kind of lookup.
	tb := mustOpen(t, "static:DUNNO")
	if v, ok := tb.LookupClient(netip0(), ""); v != "DUNNO" || !ok {
		t.Errorf("static LookupClient = %q, %v; want DUNNO, true", v, ok)
	}
	if v, ok := tb.LookupDomain("x.example"); v != "DUNNO" || !ok {
		t.Errorf("static LookupDomain = %q, %v; want DUNNO, true", v, ok)
	}
	if w := mustOpen(t, "inline:{a=1,a=2}").Warnings(); len(w) != 1 || !strings.Contains(w[0], "duplicate") {
		t.Errorf("inline duplicate warnings = %q; want one duplicate warning", w)
	}
}

func TestTextFormat(t *testing.T) {
	path := writeFile(t, "access", strings.Join([]string{
		"# a comment",
		"   # an indented comment",
		"",
		"Example.COM   REJECT   no mail   ",
		"multi    550 first part",
		"    second part",
		"# a comment inside a continued line does not end it",
		"\tthird part",
		"",
		"   after a blank line",
		"dup      first",
		"dup      second",
		"\"john doe\"@example.com OK",
		"alias:   looks like an alias file",
		"tab\tvalue\twith\ttabs",
		"crlf value\r",
		"key#hash not a comment",
		"noeol last",
	}, "\n"))
	tb := mustOpen(t, "texthash:"+path)
	for _, tc := range []struct{ key, want string }{
		{"example.com", "REJECT   no mail"},
		{"multi", "550 first part    second part\tthird part   after a blank line"},
		{"dup", "first"},
		{`"john doe"@example.com`, "OK"},
		{"alias:", "looks like an alias file"},
		{"tab", "value\twith\ttabs"},
		{"crlf", "value"},
		{"key#hash", "not a comment"},
		{"noeol", "last"},
	} {
		if got, ok := tb.Lookup(tc.key); got != tc.want || !ok {
			t.Errorf("Lookup(%q) = %q, %v; want %q, true", tc.key, got, ok, tc.want)
		}
	}
	for _, key := range []string{"#", "a", "second", "third", "\"john"} {
		if got, ok := tb.Lookup(key); ok {
			t.Errorf("Lookup(%q) = %q, true; want not found", key, got)
		}
	}
	want := []string{
		path + `:12: duplicate entry "dup" ignored; the entry at line 11 stays in force`,
		path + `:14: record is in "key: value" format; is this an alias file?`,
	}
	if diff := cmp.Diff(want, tb.Warnings()); diff != "" {
		t.Errorf("Warnings() mismatch (-want +got):\n%s", diff)
	}
}

// Open reports every problem of a file, each with FILE:LINE.
func TestTextErrors(t *testing.T) {
	path := writeFile(t, "access", strings.Join([]string{
		"   leading whitespace at the top",
		"good OK",
		"lonely",
		"also fine",
		"\"unbalanced@example.com REJECT",
		"",
		"key-only   ",
	}, "\n"))
	_, err := Open("hash:" + path)
	if err == nil {
		t.Fatal("Open succeeded; want errors")
	}
	var got []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var pe *ParseError
		if !errors.As(e, &pe) {
			t.Fatalf("error %v is not a *ParseError", e)
		}
		got = append(got, pe.Error())
	}
	want := []string{
		path + ":1: continuation line without a preceding line (a logical line must not start with whitespace)",
		path + `:3: expected format: key whitespace value, got "lonely"`,
		path + `:5: unbalanced '"' in key`,
		path + `:7: expected format: key whitespace value, got "key-only"`,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("errors mismatch (-want +got):\n%s", diff)
	}
}

func TestBinaryFile(t *testing.T) {
	path := writeFile(t, "access", "a b\nc\x00\x01d\n")
	_, err := Open(path)
	if err == nil || !strings.Contains(err.Error(), path+":2: NUL byte") {
		t.Errorf("Open(binary) = %v; want a NUL byte error at line 2", err)
	}
}

func TestSetDeduplicates(t *testing.T) {
	path := writeFile(t, "access", "a OK\n")
	var s Set
	t1, err := s.Open("hash:" + path)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range []string{path, "texthash:" + path, "lmdb:" + filepath.Dir(path) + "/./access"} {
		t2, err := s.Open(spec)
		if err != nil {
			t.Fatal(err)
		}
		if t2 != t1 {
			t.Errorf("Set.Open(%q) opened a second table; want the one for hash:%s", spec, path)
		}
	}
	re := writeFile(t, "re", "/a/ OK\n")
	r1, _ := s.Open("regexp:" + re)
	r2, _ := s.Open("pcre:" + re)
	if r1 == nil || r1 == r2 {
		t.Errorf("regexp: and pcre: of one file share a table; want two")
	}
	if got := len(s.Tables()); got != 3 {
		t.Errorf("len(Tables()) = %d; want 3", got)
	}
	if _, err := s.Open("nosuch:x"); err == nil {
		t.Errorf("Set.Open(nosuch:x) succeeded; want error")
	}
}
