package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestCompletionBash loads the generated script into bash and asks it to
// complete a switch, a command and a subcommand's switch.
func TestCompletionBash(t *testing.T) {
	var out, errs bytes.Buffer
	if got := run([]string{"completion", "bash"}, &out, &errs); got != exitOK {
		t.Fatalf("run(completion bash) = %d; stderr %q", got, errs.String())
	}
	script := filepath.Join(t.TempDir(), "relaykeeper.bash")
	if err := os.WriteFile(script, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
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
		words := strings.Fields(tt.words)
		args := append([]string{"-c", `source "$0"; COMP_WORDS=("${@}"); COMP_CWORD=$((${#COMP_WORDS[@]}-1)); _relaykeeper; echo "${COMPREPLY[@]}"`, script}, words...)
		cmd := exec.Command("bash", args...)
		got, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, got)
		}
		if strings.TrimSpace(string(got)) != tt.want {
			t.Errorf("completing %q = %q; want %q", tt.words, strings.TrimSpace(string(got)), tt.want)
		}
	}
	if got := run([]string{"completion", "zsh"}, &out, &errs); got != exitUsage {
		t.Errorf("run(completion zsh) = %d; want %d", got, exitUsage)
	}
}
