package table

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// Differential tests against the real postmap(1): the same table file and
// the same keys are asked of Postfix ("postmap -q KEY TYPE:FILE", with a
// private main.cf at Debian's compatibility level) and of Open/Lookup.

// tbl21Postmap runs postmap -q for the keys (no tab or newline in them) in TYPE:FILE (a hash:
// table is postmap'ed first) and returns what Postfix found, and what it
// wrote to stderr.
func tbl21Postmap(t *testing.T, typ, file string, keys []string) (map[string]string, string) {
	t.Helper()
	if _, err := exec.LookPath("postmap"); err != nil {
		harness.Missing(t, "postmap is not installed (Debian package postfix)")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte("compatibility_level = 3.6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var warn bytes.Buffer
	if typ == "hash" {
		cmd := exec.Command("postmap", "-c", dir, typ+":"+file)
		cmd.Stderr = &warn
		if err := cmd.Run(); err != nil {
			t.Fatalf("postmap %s: %v\n%s", file, err, warn.String())
		}
	}
	// "postmap -q -" reads the keys a line each and writes "key<TAB>value"
	// for those it finds.
	var out bytes.Buffer
	cmd := exec.Command("postmap", "-c", dir, "-q", "-", typ+":"+file)
	cmd.Stdin = strings.NewReader(strings.Join(keys, "\n") + "\n")
	cmd.Stdout, cmd.Stderr = &out, &warn
	_ = cmd.Run() // exit status 1: no key found
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		if k, v, ok := strings.Cut(line, "\t"); ok {
			got[k] = v
		}
	}
	return got, warn.String()
}

// tbl21Same opens TYPE:FILE and checks that every key finds what postmap
// finds.
func tbl21Same(t *testing.T, typ, file string, keys []string) {
	t.Helper()
	pf, warn := tbl21Postmap(t, typ, file, keys)
	if warn != "" {
		t.Fatalf("postmap warned about %s:\n%s", file, warn)
	}
	tb, err := Open(typ + ":" + file)
	if err != nil {
		t.Fatalf("Open(%s:%s): %v", typ, file, err)
	}
	for _, k := range keys {
		v, ok := tb.Lookup(k)
		pv, pok := pf[k]
		if v != pv || ok != pok {
			t.Errorf("%s: key %q: relaykeeper %q (found %v), postmap %q (found %v)", typ, k, v, ok, pv, pok)
		}
	}
}

// TestTbl21PostmapAgrees: comments, continuation lines, quoting, case,
// flags, if/endif, negation, $n and CIDR edges give the answers postmap
// gives.
func TestTbl21PostmapAgrees(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	text := write("access", "# comment\nexample.com  REJECT\nUpper.Example  OK upper\n\"john doe\"@example.com quoted\n"+
		"john\\ doe@example.com escaped\nuser@ userat\n  cont  x\nkey2\t  tab-sep   trailing   \nkey3 a\n   # indented comment\n   b\n"+
		"@example.org atdomain\n.sub.example dotted\nkey5 value # not a comment\n#key6 hidden\nk7 v7\r\n")
	textKeys := []string{"example.com", "EXAMPLE.COM", "upper.example", "\"John Doe\"@example.com", "john doe@example.com",
		"john\\ doe@example.com", "user@", "cont", "key2", "key3", "@example.org", ".sub.example", "sub.example", "key5", "#key6", "k7"}
	for _, typ := range []string{"hash", "texthash"} {
		tbl21Same(t, typ, text, textKeys)
	}
	re := write("re", "# comment\n/^(.*)@example\\.com$/   OK user=$1\n/^Case$/   lower-only\n/^CASEI$/i   casei\n"+
		"/^(a)(b)?c$/  got=[$1][$2]\n/^multi/  first part\n  continued here\n# between\n\tand tab\n"+
		"if /^if/\n/^ifyes/ inside\nif !/x/\n/^ifno/ nested-no-x\nendif\nendif\n!/@/  no-at\n/^\\$\\{lit\\}/ dollar $$ end\n")
	reKeys := []string{"Foo@example.com", "foo@EXAMPLE.COM", "case", "CASE", "casei", "CASEI", "ac", "abc", "multi",
		"ifyes@", "ifno@", "ifnox@", "noat", "${lit}@"}
	for _, typ := range []string{"regexp", "pcre"} {
		tbl21Same(t, typ, re, reKeys)
	}
	pcre := write("pcre", "/a\\/b/ slash\n|pipe\\|x| pipeline\n/^\\d+$/ digits\n/^x\\Q.*\\E$/ quoted\n/^(?-i)Inl$/ inline-flag\n"+
		"/^\\x41hex$/ hex\n/^(?<name>nm)x/ named $1\n/^(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)$/ ten=$10 ${10}\n"+
		"/^uq(.+)(.+)$/U ungreedy $1|$2\n/^anch/A anch\n/^dot.$/s nodotall\n")
	tbl21Same(t, "pcre", pcre, []string{"xa/by", "pipe|x", "12345", "x.*", "Inl", "inl", "ahex", "nmx", "abcdefghijk",
		"uqabcd", "anchx", "xanch", "dotx"})
	cidr := write("cidr", "192.168.1.1  host\n[192.168.2.0]/24  bracketed\n192.168.0.0/16  net16\n!10.0.0.0/8  not10\n"+
		"2001:db8::/32  v6net\n[2001:db8:1::]/48  v6br\n::ffff:1.2.3.0/120  mapped\nif 172.16.0.0/12\n172.16.5.0/24 inner\nendif\n::/0 all6\n")
	tbl21Same(t, "cidr", cidr, []string{"192.168.1.1", "192.168.1.2", "192.168.2.5", "192.168.255.255", "10.1.2.3", "11.0.0.1",
		"2001:db8::1", "2001:DB8::1", "2001:0db8:0000::1", "::ffff:1.2.3.4", "172.16.5.9", "172.16.6.1", "::1",
		"192.168.1.1.", "192.168.001.001", "3.4"})
}

// TestTbl21NonUTF8Line: a table line that is not UTF-8 (an old Latin-1
// access file's "REJECT Zugriff verweigert für ...") is one Postfix does
// not use: with smtputf8_enable = yes (its default since compatibility
// level 3) postmap warns "FILE, line N: non-UTF-8 input -- ignoring this
// line" for text tables, and a pattern or cidr table whose result is not
// UTF-8 fails the lookup. relaykeeper used such a line silently; a bad
// line is refused with FILE:LINE. A comment in Latin-1 is no problem for
// either.
func TestTbl21NonUTF8Line(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ typ, good, bad, key string }{
		{"hash", "k1 OK", "k2 REJECT Zur\xfcck", "k2"},
		{"texthash", "k1 OK", "m\xfcller@example.com OK", "m\xfcller@example.com"},
		{"regexp", "/^k1/ OK", "/^k2/ REJECT Zur\xfcck", "k2"},
		{"pcre", "/^k1/ OK", "/^k2/ REJECT Zur\xfcck", "k2"},
		{"cidr", "10.0.0.1 OK", "10.0.0.2 REJECT Zur\xfcck", "10.0.0.2"},
	} {
		file := filepath.Join(dir, tc.typ)
		if err := os.WriteFile(file, []byte("# Kommentar von M\xfcller\n"+tc.good+"\n"+tc.bad+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		pf, warn := tbl21Postmap(t, tc.typ, file, []string{tc.key})
		if _, found := pf[tc.key]; found || !strings.Contains(warn, "non-UTF-8") {
			t.Fatalf("%s: postmap used the Latin-1 line (found %v) or did not warn:\n%s", tc.typ, found, warn)
		}
		_, err := Open(tc.typ + ":" + file)
		if err == nil || !strings.Contains(err.Error(), file+":3: ") || !strings.Contains(err.Error(), "UTF-8") ||
			strings.Contains(err.Error(), file+":1:") {
			t.Errorf("Open(%s:%s) = %v; want one error naming %s:3 and UTF-8", tc.typ, file, err, file)
		}
	}
}

// TestTbl21InlineKeySpace: Postfix refuses an inline: table whose key has
// whitespace outside double quotes ("missing '=' after attribute name");
// relaykeeper took "{Key With Space = v}" as the key "key with space". A
// quoted key keeps its space in both.
func TestTbl21InlineKeySpace(t *testing.T) {
	if _, err := exec.LookPath("postmap"); err != nil {
		harness.Missing(t, "postmap is not installed (Debian package postfix)")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.cf"), []byte("compatibility_level = 3.6\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		spec, key string
		ok        bool
	}{
		{"inline:{ ok=1, {Key With Space = v} }", "key with space", false},
		{"inline:{ ok=1, {a \"b c\"=d} }", "a \"b c\"", false},
		{"inline:{ ok=1, {\"a b\" = c} }", "\"a b\"", true},
		{"inline:{ ok=1, {a\"b c\"=d} }", "a\"b c\"", true},
		{"inline:{ ok=1, {k\t= v w} }", "k", true},
	} {
		out, err := exec.Command("postmap", "-c", dir, "-q", tc.key, tc.spec).CombinedOutput()
		if pfOK := err == nil; pfOK != tc.ok {
			t.Fatalf("postmap -q %q %q: %v %s; want ok=%v", tc.key, tc.spec, err, out, tc.ok)
		}
		_, err = Open(tc.spec)
		switch {
		case tc.ok && err != nil:
			t.Errorf("Open(%q) = %v; Postfix reads it", tc.spec, err)
		case !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.spec+":2: ")):
			t.Errorf("Open(%q) = %v; want an error naming entry 2, as Postfix refuses it", tc.spec, err)
		}
	}
}

// TestTbl21CIDRIfExtraText: in a cidr table Postfix skips an "if" or
// "endif" line with text after it ("bad mask value", "garbage after
// ENDIF: skipping this rule"), which moves the block: rules meant for
// 10.0.0.0/8 apply to every client, or a catch-all meant for everyone
// only to 10.0.0.0/8. relaykeeper warned and kept the line, so the same
// file meant something else to each. The line is now refused with
// FILE:LINE, as any line Postfix skips. (regexp and pcre tables ignore
// the extra text and keep the line in Postfix too, a warning here.)
func TestTbl21CIDRIfExtraText(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, text string
		line       int
		pfFound    bool // what Postfix answers for 192.0.2.1, outside 10/8
	}{
		{"if", "if 10.0.0.0/8 internal clients\n0.0.0.0/0 OK\nendif\n", 1, true},
		{"endif", "if 10.0.0.0/8\n10.1.0.0/16 OK\nendif # internal\n0.0.0.0/0 REJECT\n", 3, false},
	} {
		file := filepath.Join(dir, tc.name+".cidr")
		if err := os.WriteFile(file, []byte(tc.text), 0o644); err != nil {
			t.Fatal(err)
		}
		pf, warn := tbl21Postmap(t, "cidr", file, []string{"192.0.2.1"})
		if _, found := pf["192.0.2.1"]; found != tc.pfFound || !strings.Contains(warn, fmt.Sprintf("line %d:", tc.line)) {
			t.Fatalf("%s: postmap found %v, warned %q; want found %v and a warning for line %d", tc.name, found, warn, tc.pfFound, tc.line)
		}
		_, err := Open("cidr:" + file)
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("%s:%d: ", file, tc.line)) {
			t.Errorf("%s: Open = %v; want an error naming %s:%d", tc.name, err, file, tc.line)
		}
	}
}

// TestTbl21RegexpPerlisms: regexp: tables are POSIX extended regular
// expressions (glibc's regcomp in Postfix), but relaykeeper compiled them
// with RE2's Perl syntax, so Perl-only syntax that glibc reads otherwise
// silently matched other keys: \d is "d" to glibc and a digit to RE2 (\D
// and \A alike),
// [^\s] is "not \ or s" to glibc and "not a space" to RE2, \x41, \Q..\E,
// {,2} and (?:...) likewise. Such a pattern is now refused with FILE:LINE
// (use pcre:, or write it in POSIX terms). What both read alike (\w, \s
// and \b outside brackets, escaped punctuation, [[:digit:]]) still opens
// and answers as postmap does.
func TestTbl21RegexpPerlisms(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ rule, key string }{
		{`/^\d$/ x`, "5"},
		{`/^[\d]$/ x`, "5"},
		{`/^[^\s]+$/ x`, "sss"},
		{`/^\x41$/ x`, "A"},
		{`/^\Qz\E$/ x`, "z"},
		{`/^c{,2}$/ x`, "c{,2}"},
		{`/^(?:ab)$/ x`, "ab"},
		{`/^\D$/ x`, "L"},
		{`/^a\Ab$/ x`, "aAb"},
	} {
		file := filepath.Join(dir, "perl.regexp")
		if err := os.WriteFile(file, []byte(tc.rule+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		pf, _ := tbl21Postmap(t, "regexp", file, []string{tc.key})
		_, pfFound := pf[tc.key]
		tb, err := Open("regexp:" + file)
		if err == nil {
			if _, rkFound := tb.Lookup(tc.key); rkFound != pfFound {
				t.Errorf("%s: key %q: relaykeeper found %v, postmap %v; the pattern is opened with another meaning", tc.rule, tc.key, rkFound, pfFound)
			} else {
				t.Errorf("%s: opened; want an error naming %s:1", tc.rule, file)
			}
			continue
		}
		if !strings.Contains(err.Error(), file+":1: ") {
			t.Errorf("%s: Open = %v; want an error naming %s:1", tc.rule, err, file)
		}
	}
	same := filepath.Join(dir, "posix.regexp")
	if err := os.WriteFile(same, []byte(`/^\w+\s\.[.-]x$/ words
/^[[:digit:]]{1,3}\|[^]a]$/ classes
/^a\/b\+c\{2\}$/ escaped
/^\bb\b$/ bounds
`), 0o644); err != nil {
		t.Fatal(err)
	}
	tbl21Same(t, "regexp", same, []string{"ab .x", "ab.-x", "12|b", "12|a", "12|]", "a/b+c{2}", "a/b+cc", "b", "5"})
}
