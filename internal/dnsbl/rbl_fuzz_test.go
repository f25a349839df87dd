package dnsbl

import (
	"strings"
	"testing"
)

// FuzzParseRBLSpec: a reject_rbl_client or --dnsbl zone, with or without
// a result filter, parses to a lower-case zone name without the final dot
// that prints as what parses back to it, or is refused.
func FuzzParseRBLSpec(f *testing.F) {
	for _, s := range []string{
		"zen.spamhaus.org", "zen.spamhaus.org=127.0.0.[2..11]", "bl.example=127.0.[0;1].[2;4..7]", "Bl.Example.=127.0.0.2",
		"bl.example=", "bl.example=127.0.0.[11..2]", "bl.example=127.0.0.256", "=127.0.0.2", "bl.example=[0..255].[0..255].[0..255].[0..255]",
		"bl.example=127.0.0.[;]", "bl.example=127.0.0.[..]", "bl..example", "-bl.example",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		z, err := ParseRBLSpec(s)
		if err != nil {
			return
		}
		if z.Name == "" || z.Name != strings.ToLower(z.Name) || strings.HasSuffix(z.Name, ".") {
			t.Fatalf("ParseRBLSpec(%q): zone %q", s, z.Name)
		}
		again, err := ParseRBLSpec(z.String())
		if err != nil || again.String() != z.String() || again.Name != z.Name {
			t.Fatalf("ParseRBLSpec(%q) = %q, which parses as %q, %v", s, z.String(), again.String(), err)
		}
	})
}
