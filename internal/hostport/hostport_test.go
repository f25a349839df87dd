package hostport

import (
	"strings"
	"testing"
)

// TestCfg23Check: a port out of range, 0, or no service is refused; a
// number, a service name and a host that is only a name pass.
func TestCfg23Check(t *testing.T) {
	for addr, want := range map[string]string{
		"127.0.0.1:783":      "",
		"spamd.example:smtp": "",
		"[::1]:10025":        "",
		"127.0.0.1:99999":    "port 99999 is out of range 1-65535",
		"127.0.0.1:0":        "port 0 is out of range 1-65535",
		"127.0.0.1:notaport": `unknown port or service "notaport"`,
		":783":               "missing host",
		"127.0.0.1:":         "missing port",
		"127.0.0.1":          "missing port in address",
	} {
		err := Check(addr)
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("Check(%q) = %v; want %q", addr, err, want)
		}
	}
}
