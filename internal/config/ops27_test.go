package config

import (
	"os"
	"strings"
	"testing"
)

// TestOps27POPAuthNeitherDefault: the user guide's "emailrelay --pop
// --no-smtp --log --close-stderr", run as relaykeeper on a machine with
// neither secrets file, said only "open /etc/relaykeeper.auth: no such
// file or directory", as if E-MailRelay's /etc/emailrelay.auth, which it
// also reads, did not count. The error names both, and the switch.
func TestOps27POPAuthNeitherDefault(t *testing.T) {
	for _, f := range popAuthFiles {
		if _, err := os.Stat(f); err == nil {
			t.Skipf("%s exists on this machine", f)
		}
	}
	c := &Config{}
	c.POP.Enabled = true
	err := c.CheckFrontendFiles(nil)
	if err == nil {
		t.Fatal("--pop without --pop-auth and without either default file: no error")
	}
	for _, want := range []string{"pop.auth", "/etc/relaykeeper.auth", "/etc/emailrelay.auth", "--pop-auth FILE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q; want it to name %s", err, want)
		}
	}
}
