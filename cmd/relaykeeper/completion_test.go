package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// completionScript writes the generated completion script to a file.
func completionScript(t *testing.T) string {
	t.Helper()
	var out, errs bytes.Buffer
	if got := run([]string{"completion", "bash"}, &out, &errs); got != exitOK {
		t.Fatalf("run(completion bash) = %d; stderr %q", got, errs.String())
	}
	script := filepath.Join(t.TempDir(), "relaykeeper.bash")
	if err := os.WriteFile(script, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return script
}

// complete asks bash, with script loaded, to complete the last of words
// (an empty last word: words ends with a space).
func complete(t *testing.T, script, words string) string {
	t.Helper()
	w := strings.Fields(words)
	if strings.HasSuffix(words, " ") {
		w = append(w, "")
	}
	args := append([]string{"-c", `source "$0"; COMP_WORDS=("${@}"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _relaykeeper; echo "${COMPREPLY[@]}"`, script}, w...)
	got, err := exec.Command("bash", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("bash: %v\n%s", err, got)
	}
	return strings.TrimSpace(string(got))
}

// TestCompletionBash loads the generated script into bash and asks it to
// complete a switch, a command and a subcommand's switch.
func TestCompletionBash(t *testing.T) {
	script := completionScript(t)
	tests := []struct {
		words string
		want  string
	}{
		{"relaykeeper --as-s", "--as-server"},
		{"relaykeeper --client-tls-verify-", "--client-tls-verify-name"},
		{"relaykeeper qu", "queue"},
		{"relaykeeper queue --sp", "--spool-dir"},
		{"relaykeeper postfix-enforcer --sender-a", "--sender-access"},
		{"relaykeeper completion b", "bash"},
	}
	for _, tt := range tests {
		if got := complete(t, script, tt.words); got != tt.want {
			t.Errorf("completing %q = %q; want %q", tt.words, got, tt.want)
		}
	}
	var out, errs bytes.Buffer
	if got := run([]string{"completion", "zsh"}, &out, &errs); got != exitUsage {
		t.Errorf("run(completion zsh) = %d; want %d", got, exitUsage)
	}
}

// TestAud13CompletionCommandWords: after a subcommand, the completion
// offers its own commands (queue hold, bans add, enforce test), not the
// names of the files in the current directory.
func TestAud13CompletionCommandWords(t *testing.T) {
	script := completionScript(t)
	tests := []struct {
		words string
		want  string
	}{
		{"relaykeeper queue ", "list show delete hold release retry flush quarantine restore"},
		{"relaykeeper queue ho", "hold"},
		{"relaykeeper bans ", "list add remove"},
		{"relaykeeper enforce ", "test rules reply-filter"},
	}
	for _, tt := range tests {
		if got := complete(t, script, tt.words); got != tt.want {
			t.Errorf("completing %q = %q; want %q", tt.words, got, tt.want)
		}
	}
}
