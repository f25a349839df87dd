package config

import (
	"os"
	"path/filepath"
	"testing"
)

// TestCfg19SwitchFileBOM: E-MailRelay's configuration file saved by a
// Windows editor starts with a byte-order mark (and has CRLF line ends,
// and perhaps no newline at its end). The mark was taken as part of the
// first switch's name: "unknown switch --\ufeffspool-dir", the culprit
// invisible in the message.
func TestCfg19SwitchFileBOM(t *testing.T) {
	f := filepath.Join(t.TempDir(), "emailrelay.conf")
	if err := os.WriteFile(f, []byte("\ufeffspool-dir /var/spool/x\r\nport 2525\r\nas-server"), 0o644); err != nil {
		t.Fatal(err)
	}
	cl, err := ParseSwitches([]string{f})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cl.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Spool.Dir != "/var/spool/x" || cfg.SMTP.Port != 2525 || cfg.Mode != ModeServer {
		t.Errorf("spool %q, port %d, mode %v; want /var/spool/x, 2525, server", cfg.Spool.Dir, cfg.SMTP.Port, cfg.Mode)
	}
}
