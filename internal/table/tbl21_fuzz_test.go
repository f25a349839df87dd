package table

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// FuzzOpenSpec: tables given in the spec itself (inline:{...}, static:,
// regexp:{...}, pcre:{...}, cidr:{...}) never panic, in parsing or in
// lookups; every error names the spec and an entry number (FILE:LINE);
// an inline table written back out opens to the same entries.
func FuzzOpenSpec(f *testing.F) {
	for _, s := range []string{
		"inline:{ a=1, {b = two words}, C=3 }",
		"inline:{ {a=1 }, { b=2, c=3 } }",
		"inline:{ d = x=y, {e=}, f=g h }",
		"inline:{}",
		"inline:{ {{a}=b}, x{y}=z }",
		"static:{ hello world }",
		"static:OK",
		"pcre:{ {/^a(.)/ got $1}, {/b/ two words} }",
		"regexp:{ {if /a/}, {/b/ x}, {endif} }",
		"cidr:{ {10.0.0.0/8 ten}, {!192.168.0.0/16 nonpriv} }",
		"pcre:{ /a/ x }",
		"proxy:inline:{ {a = b}, }",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		typ, arg, err := splitSpec(spec)
		if err != nil || !strings.HasPrefix(trimSpace(arg), "{") && typ != "static" {
			return // files are FuzzParseText's, FuzzParseRegexp's and FuzzParseCIDR's
		}
		tb, err := Open(spec)
		if err != nil {
			var pe *ParseError
			for _, e := range unjoin(err) {
				if errors.As(e, &pe) && (pe.File != strings.TrimSpace(spec) || pe.Line < 1) {
					t.Fatalf("error %q does not name the spec and an entry", e)
				}
			}
			return
		}
		for _, key := range []string{"", "a", "*", "10.1.2.3", "user@example.com", spec} {
			tb.Lookup(key)
		}
		c := tb.cur.Load()
		if c.kind != kindFixed {
			return
		}
		keys := make([]string, 0, len(c.fixed))
		for k := range c.fixed {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var b strings.Builder
		b.WriteString("inline:{")
		for _, k := range keys {
			if v, ok := tb.Lookup(k); !ok || v != c.fixed[k].value {
				t.Fatalf("Lookup(%q) = %q, %v; want %q", k, v, ok, c.fixed[k].value)
			}
			b.WriteString(" { " + k + " = " + c.fixed[k].value + " },")
		}
		b.WriteString(" }")
		again, err := Open(b.String())
		if err != nil {
			t.Fatalf("reopen of %q: %v", b.String(), err)
		}
		for _, k := range keys {
			if v, ok := again.Lookup(k); !ok || v != c.fixed[k].value {
				t.Fatalf("reopened %q: Lookup(%q) = %q, %v; want %q", b.String(), k, v, ok, c.fixed[k].value)
			}
		}
	})
}

// unjoin returns the errors joined in err, or err itself.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
