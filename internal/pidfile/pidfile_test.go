package pidfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCfg23CheckAgreesWithWrite: Check, which --check runs, refuses exactly
// the pid files Write refuses (a directory, a directory two levels deep
// that Write does not make, a path under a file), with the same words, and
// writes nothing. --check used to say nothing of --pid-file, and the start
// then failed on it.
func TestCfg23CheckAgreesWithWrite(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		path, want string // want: "" for a good path, else words of the error
	}{
		{dir, "is a directory"},
		{filepath.Join(dir, "a", "b", "relay.pid"), "cannot make the pid file's directory"},
		{filepath.Join(file, "relay.pid"), "not a directory"},
		{filepath.Join(dir, "one", "relay.pid"), ""},
		{filepath.Join(dir, "relay.pid"), ""},
		{file, ""},
	} {
		cerr := Check(c.path)
		if _, err := os.Stat(c.path); c.path != dir && c.path != file && err == nil {
			t.Errorf("Check(%s) wrote the file", c.path)
		}
		werr := Write(c.path)
		switch {
		case c.want == "" && (cerr != nil || werr != nil):
			t.Errorf("%s: Check %v, Write %v; want both to pass", c.path, cerr, werr)
		case c.want != "" && (cerr == nil || werr == nil):
			t.Errorf("%s: Check %v, Write %v; want both to fail", c.path, cerr, werr)
		case c.want != "" && !strings.Contains(cerr.Error(), c.want):
			t.Errorf("%s: Check %v; want %q", c.path, cerr, c.want)
		}
	}
	if Check("") != nil {
		t.Error(`Check("") refused no pid file`)
	}
}
