package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestMakeInstall runs "make install" into a staging directory with
// PREFIX=/usr, as a package build would, and checks that everything is in
// place with the paths the unit needs; a second install keeps an edited
// configuration file.
func TestMakeInstall(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is needed: %v", err)
	}
	dest := t.TempDir()
	install := func() {
		t.Helper()
		out, errOut, code := runBinary(t, "make", "", "-s", "-C", "../..", "install", "INSTALL_DEPS=",
			"BIN="+harness.Binary(t), "DESTDIR="+dest, "PREFIX=/usr")
		if code != 0 {
			t.Fatalf("make install: exit %d\n%s%s", code, out, errOut)
		}
	}
	install()
	for _, f := range []string{
		"usr/sbin/relaykeeper",
		"usr/share/man/man8/relaykeeper.8", "usr/share/man/man5/relaykeeper.toml.5",
		"usr/share/man/man8/relaykeeper-queue.8", "usr/share/man/man8/relaykeeper-postfix-enforcer.8",
		"usr/share/bash-completion/completions/relaykeeper",
		"usr/share/doc/relaykeeper/LICENSE", "usr/share/doc/relaykeeper/operations.md",
		// What the docs link to: metrics.md, admin.md.
		"usr/share/doc/relaykeeper/metrics-sample.txt", "usr/share/doc/relaykeeper/screenshots/queue.png",
		"usr/share/doc/relaykeeper/examples/relaykeeper-alerts.yml", "usr/share/doc/relaykeeper/examples/grafana-dashboard.json",
		"etc/relaykeeper/relaykeeper.toml", "etc/relaykeeper/enforce-rules.conf", "etc/relaykeeper/welcomelist",
		"etc/fail2ban/filter.d/relaykeeper.conf", "etc/fail2ban/jail.d/relaykeeper.conf",
		"etc/fail2ban/filter.d/relaykeeper-auth.conf", "etc/fail2ban/jail.d/relaykeeper-auth.conf",
		"etc/logrotate.d/relaykeeper",
		"usr/lib/systemd/system/relaykeeper.service", "usr/lib/systemd/system/relaykeeper-postfix-enforcer.service",
		"usr/lib/sysusers.d/relaykeeper.conf", "usr/lib/tmpfiles.d/relaykeeper.conf",
	} {
		if _, err := os.Stat(filepath.Join(dest, f)); err != nil {
			t.Errorf("make install did not install %s: %v", f, err)
		}
	}
	unit, _ := os.ReadFile(filepath.Join(dest, "usr/lib/systemd/system/relaykeeper.service"))
	if !strings.Contains(string(unit), "ExecStart=/usr/sbin/relaykeeper --config /etc/relaykeeper/relaykeeper.toml") {
		t.Errorf("the installed unit does not start /usr/sbin/relaykeeper:\n%s", unit)
	}
	pfe, _ := os.ReadFile(filepath.Join(dest, "usr/lib/systemd/system/relaykeeper-postfix-enforcer.service"))
	if !strings.Contains(string(pfe), "ExecStart=/usr/sbin/relaykeeper postfix-enforcer ") {
		t.Errorf("the installed postfix-enforcer unit does not start /usr/sbin/relaykeeper:\n%s", pfe)
	}
	comp, _ := os.ReadFile(filepath.Join(dest, "usr/share/bash-completion/completions/relaykeeper"))
	if !strings.Contains(string(comp), "complete -F _relaykeeper relaykeeper") {
		t.Errorf("the installed completion is not the script:\n%s", comp)
	}

	conf := filepath.Join(dest, "etc/relaykeeper/relaykeeper.toml")
	if err := os.WriteFile(conf, []byte("# edited\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	install()
	if got, _ := os.ReadFile(conf); string(got) != "# edited\n" {
		t.Errorf("a second make install overwrote the edited configuration: %q", got)
	}
}
