package srs

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFuzz26SecretsLongLine: a secrets file with a line of a megabyte is
// refused with the file and the line, not bufio's "token too long" alone.
func TestFuzz26SecretsLongLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "secrets")
	if err := os.WriteFile(path, []byte("first\n"+strings.Repeat("s", 1<<20)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadSecrets(path)
	if err == nil || !strings.HasPrefix(err.Error(), "srs: "+path+":2: a line longer than 65536 bytes") {
		t.Errorf("LoadSecrets of a megabyte line 2: %v", err)
	}
}
