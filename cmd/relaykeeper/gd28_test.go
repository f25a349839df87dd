package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repeatedContext returns the first lower-case word that a line's leading
// contexts ("relaykeeper bans: enforce: bans: ...") say twice, or "".
func repeatedContext(line string) string {
	said := map[string]bool{}
	rest := line
	for {
		word, after, ok := strings.Cut(rest, ": ")
		if !ok || word == "" || strings.ContainsAny(word, "/.:") || strings.ToLower(word) != word {
			return ""
		}
		for _, w := range strings.Fields(word) {
			if said[w] {
				return w
			}
			said[w] = true
		}
		rest = after
	}
}

// TestGd28CLIErrorsSayContextOnce: the subcommands' errors said their
// context twice ("relaykeeper bans: enforce: bans: open ...", "relaykeeper
// queue: queue: spool: ...").
func TestGd28CLIErrorsSayContextOnce(t *testing.T) {
	dir := t.TempDir()
	asDir := filepath.Join(dir, "bans-dir")
	os.Mkdir(asDir, 0o755)
	notDir := filepath.Join(dir, "file")
	os.WriteFile(notDir, []byte("x\n"), 0o644)
	for _, args := range [][]string{
		{"bans", "list", "--bans", asDir},
		{"bans", "add", "192.0.2.1", "--bans", asDir},
		{"bans", "remove", "192.0.2.1", "--bans", asDir},
		{"bans", "list", "--bans", filepath.Join(dir, "b"), "--welcomelist", asDir},
		{"queue", "-s", filepath.Join(dir, "none")},
		{"queue", "-s", notDir},
		{"queue", "--config", filepath.Join(dir, "none.conf")},
		{"stats", filepath.Join(dir, "none.log")},
		{"passwd", "x"},
		{"enforce", "test", "--rules", asDir, "550 x"},
		{"postfix-enforcer", "--log", asDir, "--state", filepath.Join(dir, "st"), "-t"},
	} {
		var out, errb bytes.Buffer
		status := runCommand(&Command{Name: args[0], Args: args[1:]}, &out, &errb)
		if status == exitOK {
			t.Errorf("%q: exit %d; want a failure", args, status)
		}
		for _, line := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
			if w := repeatedContext(line); w != "" {
				t.Errorf("%q: %q says %q twice", args, line, w)
			}
		}
	}
}
