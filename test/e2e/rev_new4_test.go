package e2e

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRevNew4EMailRelayConfAsWritten: /etc/emailrelay.conf as E-MailRelay
// and its GUI write it, with "name=value" lines and a quoted value (a
// spool directory with a space), runs the relay with the message landing
// in that spool. The quotes were kept: relaykeeper made its spool in a
// relative directory named '"' under its working directory, silently;
// "interface=127.0.0.1" was an unknown switch.
func TestRevNew4EMailRelayConfAsWritten(t *testing.T) {
	t.Parallel()
	spoolDir := filepath.Join(t.TempDir(), "email relay")
	if err := os.Mkdir(spoolDir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := writeFile(t, t.TempDir(), "emailrelay.conf",
		"as-server\ninterface=127.0.0.1\nspool-dir \""+spoolDir+"\"\nremote-clients no\nlog yes\n", 0o644)
	r := startRelay(t, "127.0.0.1", conf)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("from a conf file with quotes"))
	envs, _ := filepath.Glob(filepath.Join(spoolDir, "*.envelope"))
	if len(envs) != 1 {
		t.Errorf("envelopes in %s, the quoted spool-dir of %s: %v; want 1", spoolDir, conf, envs)
	}
}
