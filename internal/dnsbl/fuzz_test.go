package dnsbl

import "testing"

func FuzzParseEmailRelay(f *testing.F) {
	for _, s := range []string{
		"zen.spamhaus.org", "a.example,b.example,2,-500,127.0.0.1:53", "1.1.1.1:53,500,1,zen.spamhaus.org",
		"zen.example=127.0.0.[2..11]", "bl.example=127.0.[0;1].[2;4..7],1,3s", ",500,1,a.example", "[::1]:53,1,1,a.b",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		cfg, err := ParseEmailRelay(spec)
		if err != nil {
			return
		}
		if cfg.Threshold < 0 || cfg.Timeout < 0 || len(cfg.Zones) == 0 || (cfg.FailClosed && cfg.Threshold == 0) {
			t.Fatalf("ParseEmailRelay(%q) = %+v", spec, cfg)
		}
		for _, z := range cfg.Zones {
			z2, err := ParseRBLSpec(z.String())
			if err != nil || z2.String() != z.String() {
				t.Fatalf("zone %q does not reparse: %q, %v", z, z2, err)
			}
		}
	})
}
