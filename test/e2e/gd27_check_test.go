package e2e

import (
	"strings"
	"testing"
)

// TestGd27CheckParsesIdleFiles: --check in a mode that enforces nothing
// (store-only, client, enforcement off) read neither --welcomelist nor
// --enforce-rules nor [enforce] reply_filter, and said the configuration
// was good with broken ones; the relay then failed to start the day the
// mode changed. Each named file is now parsed, and its bad line reported
// as FILE:LINE.
func TestGd27CheckParsesIdleFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wl := writeFile(t, dir, "welcomelist", "192.0.2.1\n10.0.0.0/99\n", 0o644)
	rules := writeFile(t, dir, "rules", "# rules\ngarbage rule line\n", 0o644)
	filter := writeFile(t, dir, "reply_filter", "/unclosed(/ 550 x\n", 0o644)
	cfg := writeFile(t, dir, "relaykeeper.toml", "[enforce]\nreply_filter = \""+filter+"\"\n", 0o644)
	for _, mode := range [][]string{
		{"--as-server"},
		{"--as-client", "127.0.0.1:9"},
		{"--as-server", "--forward-to", "127.0.0.1:9", "--no-enforce"},
	} {
		args := append([]string{"--spool-dir", t.TempDir(), "--interface", "127.0.0.1", "--port", "2599", "--config", cfg,
			"--welcomelist", wl, "--enforce-rules", rules, "--check"}, mode...)
		code, out, errOut := runCLI(t, args...)
		for _, want := range []string{wl + ":2:", rules + ":2:", filter + ":1:"} {
			if code == 0 || !strings.Contains(errOut, want) {
				t.Errorf("%v --check: exit %d\n%s%s\nwant a failure naming %s", mode, code, out, errOut, want)
			}
		}
	}
}
