package e2e

import (
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestCheckSwitch: --check builds everything a start would and exits, as
// `postfix check` or `nginx -t`: 0 when the relay would start, 2 with the
// file and line of the first problem. It listens on nothing and forwards
// nothing, so it runs beside a live relay before a reload.
func TestCheckSwitch(t *testing.T) {
	t.Parallel()
	spoolDir, dir := t.TempDir(), t.TempDir()
	if _, stderr, code := opsCmd(t, "Subject: queued\n\nbody\n", "submit", "--spool-dir", spoolDir, "--from", "a@example.com", "b@example.net"); code != 0 {
		t.Fatalf("submit: exit %d: %s", code, stderr)
	}
	up := harness.NewFakeSMTP(t, harness.Script{})
	port := strconv.Itoa(harness.FreePort(t))
	good := writeFile(t, dir, "good.toml", "[policy]\nmynetworks = [\"127.0.0.0/8\"]\n", 0o644)
	base := []string{"--check", "--as-server", "--interface", "127.0.0.1", "--port", port, "--spool-dir", spoolDir,
		"--forward", "--forward-to", up.Addr()}
	stdout, stderr, code := opsCmd(t, "", append(base, "--config", good)...)
	if code != 0 || !strings.Contains(stdout, "would start") {
		t.Fatalf("--check of a good configuration: exit %d, stdout %q, stderr %q; want 0 and a word that it would start", code, stdout, stderr)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		t.Errorf("--check left its port taken: %v", err)
	} else {
		ln.Close()
	}
	if n := len(up.Transactions()); n != 0 {
		t.Errorf("--check with --forward forwarded %d messages; want none", n)
	}
	if out, _, _ := opsCmd(t, "", "queue", "list", "--spool-dir", spoolDir); !strings.Contains(out, "b@example.net") {
		t.Errorf("after --check the queued message is not listed: %q", out)
	}

	bad := writeFile(t, dir, "bad.toml", "[policy]\n# trusted\nmynetworks = [\"cidr:{ {0.0.0.0/0 OK} }\"]\n", 0o644)
	_, stderr, code = opsCmd(t, "", append(base, "--config", bad)...)
	if code != 2 || !strings.Contains(stderr, bad+":3: ") || !strings.Contains(stderr, "open relay") {
		t.Errorf("--check of an open relay: exit %d, stderr %q; want 2 naming %s:3", code, stderr, bad)
	}
	_, stderr, code = opsCmd(t, "", append(base, "--config", good, "--server-tls", "--server-tls-certificate", dir+"/missing.pem")...)
	if code != 2 || !strings.Contains(stderr, "missing.pem") {
		t.Errorf("--check with a missing certificate: exit %d, stderr %q; want 2 naming the file", code, stderr)
	}
}
