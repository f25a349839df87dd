package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
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

// TestRevNew4DefaultTransportNextHop: Postfix's default_transport with a
// next hop, "smtp:[host]:port", which docs/postfix-migration.md says
// works, delivers there. relaykeeper refused to start: '"smtp:[...]" is
// not a transport: define [transports.smtp:[...]]'.
func TestRevNew4DefaultTransportNextHop(t *testing.T) {
	t.Parallel()
	hop := harness.NewFakeSMTP(t, harness.Script{})
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ndefault_transport = \"smtp:[%s]:%s\"\n", hostOf(hop.Addr()), portOf(hop.Addr())))
	r := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--forward-on-disconnect", "--spool-dir", t.TempDir(), "--config", cfg)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("by default_transport"))
	if txs := hop.WaitTransactions(t, 1, 15*time.Second); len(txs) != 1 {
		t.Errorf("transactions at default_transport's next hop: %d; want 1", len(txs))
	}
}

// TestRevNew4PidFileParentMade: the E-MailRelay start-up script's
// "--pid-file /run/emailrelay/emailrelay.pid" works on a fresh machine:
// as E-MailRelay does, the pid file's immediate parent directory is made
// if missing. relaykeeper logged "cannot write pid file" and ran without
// one, so the script's stop and status found nothing to signal.
func TestRevNew4PidFileParentMade(t *testing.T) {
	t.Parallel()
	pidFile := filepath.Join(t.TempDir(), "emailrelay", "emailrelay.pid")
	r := startRelay(t, "127.0.0.1", "--as-server", "--syslog", "--pid-file", pidFile, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	waitPidFile(t, pidFile, r.current().PID())
}
