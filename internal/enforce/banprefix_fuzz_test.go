package enforce

import (
	"strings"
	"testing"
)

// FuzzParseBanTarget: what an administrator types after "ban" either is
// refused with an error on one line or is a masked network no wider than
// a ban may be, written so that it reads back as itself.
func FuzzParseBanTarget(f *testing.F) {
	for _, s := range []string{"192.0.2.7", "192.0.2.0/24", "192.0.2.7/8", "2001:db8::7/64", "2001:db8::/32",
		"::ffff:192.0.2.7", "::ffff:192.0.2.0/120", "::ffff:0:0/96", "fe80::1%eth0", "fe80::1%eth0/64",
		"0.0.0.0/0", "::/0", "", "/", "192.0.2.7/33", "192.0.2.7/-1", "1.2.3.4\n", "1.2.3.4 ", "01.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParseBanTarget(s)
		if err != nil {
			if msg := err.Error(); strings.ContainsAny(msg, "\r\n") && !strings.Contains(s, "/") {
				t.Fatalf("ParseBanTarget(%q): error %q spans lines", s, msg)
			}
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" || p.Addr().Is4In6() {
			t.Fatalf("ParseBanTarget(%q) = %v: not a masked, unzoned, unmapped network", s, p)
		}
		min := MinBanIPv6Prefix
		if p.Addr().Is4() {
			min = MinBanIPv4Prefix
		}
		if p.Bits() < min {
			t.Fatalf("ParseBanTarget(%q) = %v: wider than /%d", s, p, min)
		}
		if back, err := ParseBanTarget(banTarget(p)); err != nil || back != p {
			t.Fatalf("ParseBanTarget(%q) = %v, written %q, reads back as %v, %v", s, p, banTarget(p), back, err)
		}
	})
}
