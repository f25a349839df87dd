package pickup

import (
	"strings"
	"testing"
)

// FuzzParseDSN: sendmail's -N, -R and -V values (a local user's, passed on
// to the spool and from there to MAIL FROM and RCPT TO) are refused, or
// come back in the spool's form: NOTIFY one of NEVER or some of SUCCESS,
// FAILURE and DELAY, each once; RET FULL or HDRS; ENVID printable ASCII of
// at most 100 characters, so that nothing can break the SMTP command it
// goes into. Parsing the result again gives the result.
func FuzzParseDSN(f *testing.F) {
	for _, s := range [][3]string{
		{"success,failure", "hdrs", "abc"}, {"never", "FULL", ""}, {"delay, never", "", ""}, {"", "x", "a b"},
		{"Success,SUCCESS", "", "x\r\nRCPT TO:<e@x>"}, {"ſuccess", "ſull", ""}, {",", "", strings.Repeat("x", 101)},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, notify, ret, envid string) {
		d, err := ParseDSN(notify, ret, envid)
		if err != nil && err != ErrBadNotify {
			if d != (DSN{}) {
				t.Fatalf("ParseDSN(%q, %q, %q) = %+v with %v", notify, ret, envid, d, err)
			}
			return
		}
		if d.Notify != "" && d.Notify != "NEVER" {
			seen := map[string]bool{}
			for _, w := range strings.Split(d.Notify, ",") {
				if (w != "SUCCESS" && w != "FAILURE" && w != "DELAY") || seen[w] {
					t.Fatalf("ParseDSN(%q, ...): NOTIFY %q", notify, d.Notify)
				}
				seen[w] = true
			}
		}
		if d.Ret != "" && d.Ret != "FULL" && d.Ret != "HDRS" {
			t.Fatalf("ParseDSN(..., %q, ...): RET %q", ret, d.Ret)
		}
		if len(d.EnvID) > 100 || strings.ContainsFunc(d.EnvID, func(r rune) bool { return r <= ' ' && r != ' ' || r > '~' }) {
			t.Fatalf("ParseDSN(..., %q): ENVID %q", envid, d.EnvID)
		}
		if again, err := ParseDSN(d.Notify, d.Ret, d.EnvID); err != nil || again != d {
			t.Fatalf("ParseDSN(%q, %q, %q) = %+v, which parses as %+v, %v", notify, ret, envid, d, again, err)
		}
	})
}
