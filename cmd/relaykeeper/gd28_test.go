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

// TestGd28BansAddWelcomelisted: "bans add" of a welcomelisted address
// said "banned until" and nothing else, though the relay ignores the ban
// while the address is listed (bans list marks it "not applied").
func TestGd28BansAddWelcomelisted(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, ".enforce"), 0o755)
	welcome := filepath.Join(dir, ".enforce", "welcomelist")
	os.WriteFile(welcome, []byte("192.0.2.7\n"), 0o644)

	status, out, errs := runBansTest("add", "--spool-dir", dir, "192.0.2.7")
	if status != exitOK || !strings.HasPrefix(out, "192.0.2.7 banned until ") {
		t.Fatalf("add = %d, %q, %q", status, out, errs)
	}
	want := "relaykeeper bans: warning: 192.0.2.7 is welcomelisted (" + welcome + "): the ban is not applied while it is listed there\n"
	if errs != want {
		t.Errorf("add of a welcomelisted address: stderr %q; want %q", errs, want)
	}
	// Not listed, or a network: no warning.
	for _, target := range []string{"192.0.2.8", "192.0.2.0/24"} {
		if status, out, errs := runBansTest("add", "--spool-dir", dir, target); status != exitOK || errs != "" {
			t.Errorf("add %s = %d, %q, %q; want no warning", target, status, out, errs)
		}
	}
	// An unreadable welcomelist: the ban is made, and the operator told.
	os.Remove(welcome)
	os.Mkdir(welcome, 0o755)
	if status, _, errs := runBansTest("add", "--spool-dir", dir, "192.0.2.9"); status != exitOK || !strings.Contains(errs, "warning: ") || !strings.Contains(errs, welcome) {
		t.Errorf("add with a directory for the welcomelist = %d, %q; want a warning naming it", status, errs)
	}
}

// TestGd28CompletionAfterCommand: after "enforce rules" the completion
// offered the file names of the current directory (rules takes no
// argument) and after "enforce rules -" test's switches; after a command
// whose argument is an address or an id, or a switch whose value is not a
// file, it offered file names too.
func TestGd28CompletionAfterCommand(t *testing.T) {
	script := completionScript(t)
	for _, tt := range []struct{ words, want string }{
		{"relaykeeper enforce rules ", ""},
		{"relaykeeper enforce rules --", "--help"},
		{"relaykeeper enforce reply-filter ", ""},
		{"relaykeeper enforce reply-filter --", "--help"},
		{"relaykeeper enforce test --ho", "--host"},
		{"relaykeeper enforce test --host ", ""},
		{"relaykeeper enforce test --rules completion_te", "completion_test.go"},
		{"relaykeeper bans add ", ""},
		{"relaykeeper bans add --duration ", ""},
		{"relaykeeper bans --bans gd28_te", "gd28_test.go"},
		{"relaykeeper bans --bans x ", "list add remove"},
		{"relaykeeper queue show ", ""},
		{"relaykeeper queue --spool-dir gd28_te", "gd28_test.go"},
		{"relaykeeper completion bash ", ""},
		{"relaykeeper stats gd28_te", "gd28_test.go"},
		{"relaykeeper stats --top ", ""},
		{"relaykeeper submit --from ", ""},
	} {
		if got := complete(t, script, tt.words); got != tt.want {
			t.Errorf("completing %q = %q; want %q", tt.words, got, tt.want)
		}
	}
	// What the completion offers is taken: "enforce rules --help".
	var out, errs bytes.Buffer
	if status := run([]string{"enforce", "rules", "--help"}, &out, &errs); status != exitOK || !strings.HasPrefix(out.String(), "usage: relaykeeper enforce") {
		t.Errorf("enforce rules --help = %d, %q, %q", status, out.String(), errs.String())
	}
}
