package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestSeeds25DefaultWelcomelistDirMade: relay-enforcer's manual starts it
// as "relay-enforcer -v" from cron, and its welcomelist "is created at
// startup" if missing. postfix-enforcer's default welcomelist is
// /etc/relaykeeper/welcomelist; on a Postfix host where the binary was
// copied in (no make install) /etc/relaykeeper does not exist, and
// "relaykeeper postfix-enforcer -v" stopped at start ("no directory
// /etc/relaykeeper") although it makes its default state's directory,
// /var/lib/relaykeeper. It makes the default welcomelist's directory now
// (-t still writes nothing); a --welcomelist given in a missing directory is
// still refused, as a typo. The binary runs in a private mount namespace
// with an overlay over /etc, so that the host's /etc is not touched.
func TestSeeds25DefaultWelcomelistDirMade(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		harness.Missing(t, "a private mount namespace with an overlay over /etc needs root")
	}
	unshare := harness.Need(t, "unshare")
	if _, err := os.Stat("/etc/relaykeeper"); err == nil {
		t.Skip("/etc/relaykeeper exists on this host: nothing to make")
	}
	dir := t.TempDir()
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	logFile := writeFile(t, dir, "mail.log", seeds22RefusedLog(), 0o644)
	run := func(extra ...string) (string, error) {
		args := append([]string{"postfix-enforcer", "--once", "--log", logFile, "--state", filepath.Join(dir, "state"),
			"--sender-access", filepath.Join(dir, "sender_access"), "--ban-log", filepath.Join(dir, "bans.log"),
			"--ban-delay", "0", "--smtp", "127.0.0.1:9", "--sender", "postmaster@relay.test"}, extra...)
		script := `mount --make-rprivate / && mount -t overlay overlay -o lowerdir=/etc,upperdir="$1",workdir="$2" /etc && shift 2 && exec "$@"`
		cmd := exec.Command(unshare, append([]string{"-m", "sh", "-c", script, "sh", upper, work, harness.Binary(t)}, args...)...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run("-t"); err != nil {
		t.Fatalf("postfix-enforcer -t with the default welcomelist: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(upper, "relaykeeper")); err == nil {
		t.Errorf("-t made /etc/relaykeeper; test mode writes nothing")
	}
	out, err := run("-v")
	if err != nil {
		t.Fatalf("relaykeeper postfix-enforcer -v without /etc/relaykeeper: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(upper, "relaykeeper", "welcomelist"))
	if err != nil || !strings.Contains(string(b), "127.0.0.0/8") {
		t.Errorf("/etc/relaykeeper/welcomelist after the start: %v\n%s", err, b)
	}
	if !strings.Contains(out, "ban client=203.0.113.7") {
		t.Errorf("postfix-enforcer printed:\n%s\nwant the ban", out)
	}
	// A file named in a missing directory is a typo: refused.
	out, err = run("--welcomelist", filepath.Join(dir, "no-such-dir", "welcomelist"))
	if err == nil || !strings.Contains(out, "no directory") {
		t.Errorf("--welcomelist in a missing directory: %v\n%s\nwant it refused", err, out)
	}
}
