package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestReview13InstallSendmailPaths: README says "make install-sendmail
// makes it /usr/sbin/sendmail", but with the default PREFIX the links went
// to /usr/local/sbin, where cron, PHP's mail() and git send-email do not
// look. sendmail goes to /usr/sbin, mailq and newaliases to /usr/bin, each
// a link to the installed binary.
func TestReview13InstallSendmailPaths(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is needed: %v", err)
	}
	dest := t.TempDir()
	out, errOut, code := runBinary(t, "make", "", "-s", "-C", "../..", "install-sendmail", "INSTALL_DEPS=",
		"BIN="+harness.Binary(t), "DESTDIR="+dest)
	if code != 0 {
		t.Fatalf("make install-sendmail: exit %d\n%s%s", code, out, errOut)
	}
	for _, f := range []string{"usr/sbin/sendmail", "usr/bin/mailq", "usr/bin/newaliases"} {
		got, err := os.Readlink(filepath.Join(dest, f))
		if err != nil || got != "/usr/local/sbin/relaykeeper" {
			t.Errorf("%s links to %q (%v); want /usr/local/sbin/relaykeeper", f, got, err)
		}
	}
}
