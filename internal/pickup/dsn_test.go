package pickup

import (
	"strings"
	"testing"
)

func TestRevDSN4ParseDSN(t *testing.T) {
	for _, tc := range []struct {
		notify, ret, envid string
		want               DSN
		bad                bool
	}{
		{"", "", "", DSN{}, false},
		{"never", "hdrs", "id-1", DSN{Notify: "NEVER", Ret: "HDRS", EnvID: "id-1"}, false},
		{"failure, delay,failure", "Full", "", DSN{Notify: "FAILURE,DELAY", Ret: "FULL"}, false},
		{"never,success", "hdrs", "", DSN{Ret: "HDRS"}, true},
		{"sometimes", "", "x", DSN{EnvID: "x"}, true},
		{"", "most", "", DSN{}, true},
		{"", "", strings.Repeat("x", 101), DSN{}, true},
		{"", "", "tab\there", DSN{}, true},
	} {
		got, err := ParseDSN(tc.notify, tc.ret, tc.envid)
		if (err != nil) != tc.bad || got != tc.want {
			t.Errorf("ParseDSN(%q, %q, %q) = %+v, %v; want %+v, error %v", tc.notify, tc.ret, tc.envid, got, err, tc.want, tc.bad)
		}
	}
}
