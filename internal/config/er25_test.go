package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestER25ForwardToWithClientOrProxy: --as-client and --as-proxy name the
// smarthost themselves, and E-MailRelay refuses --forward-to beside them
// ("--forward-to cannot be used with --as-client or --as-proxy").
// relaykeeper took whichever came last and quietly dropped the other
// address: "--as-client new:25 --forward-to old:25" forwarded to old:25.
func TestER25ForwardToWithClientOrProxy(t *testing.T) {
	file := filepath.Join(t.TempDir(), "emailrelay.conf")
	if err := os.WriteFile(file, []byte("forward-to 127.0.0.1:2525\nspool-dir /tmp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--as-client", "127.0.0.1:25", "--forward-to", "127.0.0.1:2525"},
		{"--forward-to", "127.0.0.1:2525", "--as-client", "127.0.0.1:25"},
		{"-o", "127.0.0.1:2525", "-y", "127.0.0.1:25"},
		{"--as-proxy", "127.0.0.1:25", "--forward-to=127.0.0.1:2525"},
		{"--as-client", "127.0.0.1:25", file},
	} {
		_, err := ParseSwitches(args)
		if err == nil || !strings.Contains(err.Error(), "forward-to") || !strings.Contains(err.Error(), "-as-") && !strings.Contains(err.Error(), "-y") {
			t.Errorf("ParseSwitches(%q) = %v; want an error naming --forward-to and the mode", args, err)
		}
	}
	// Each alone is as before, and so is --as-server with --forward-to.
	for _, args := range [][]string{
		{"--as-client", "127.0.0.1:25"},
		{"--as-proxy", "127.0.0.1:25"},
		{"--as-server", "--forward-to", "127.0.0.1:25"},
		{"--forward-to", "127.0.0.1:25", "--as-server"},
	} {
		if _, err := ParseSwitches(args); err != nil {
			t.Errorf("ParseSwitches(%q) = %v; want no error", args, err)
		}
	}
}
