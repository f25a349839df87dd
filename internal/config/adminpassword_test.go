package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestReadAdminPasswordFile(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ content, want, err string }{
		{" s3cret \nignored\n", "s3cret", ""},
		{"\nsecond\n", "", "the first line is empty"},
	} {
		f := filepath.Join(dir, "pw")
		os.WriteFile(f, []byte(tc.content), 0o600)
		got, err := ReadAdminPasswordFile(f)
		if got != tc.want || (tc.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("ReadAdminPasswordFile(%q) = %q, %v; want %q and an error containing %q", tc.content, got, err, tc.want, tc.err)
		}
	}
	if _, err := ReadAdminPasswordFile(filepath.Join(dir, "absent")); err == nil || !strings.Contains(err.Error(), "absent") {
		t.Errorf("ReadAdminPasswordFile(absent) = %v; want an error naming the file", err)
	}
}
