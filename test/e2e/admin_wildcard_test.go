package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestAdminHTTPWildcardNamed: --admin-http on every address without a
// password is refused at start, naming the address as the user wrote it
// (Go's wildcard listener calls itself [::]) and what to do about it.
func TestAdminHTTPWildcardNamed(t *testing.T) {
	addr := fmt.Sprintf("0.0.0.0:%d", harness.FreePort(t))
	_, errOut, code := runBinary(t, harness.Binary(t), "", "--spool-dir", t.TempDir(),
		"--port", fmt.Sprint(harness.FreePort(t)), "--admin-http", addr)
	if code == 0 || !strings.Contains(errOut, "--admin-http: "+addr+":") || !strings.Contains(errOut, "--admin-password-file") {
		t.Errorf("exit %d, %q; want a refusal naming --admin-http %s and the password switch", code, errOut, addr)
	}
}
