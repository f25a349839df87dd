package auth

import (
	"strings"
	"testing"
)

// TestCfg23DirectoryNoLine: a secrets file or sender_login_maps that is a
// directory is refused naming the directory, with no line number: the
// error used to read "DIR:1: read DIR: is a directory", a line of a file
// that is none.
func TestCfg23DirectoryNoLine(t *testing.T) {
	dir := t.TempDir()
	_, _, cerr := OpenClientFile(dir, nil)
	_, lerr := LoadSenderLogins(dir)
	for what, err := range map[string]error{"client secrets": cerr, "sender logins": lerr} {
		if err == nil || !strings.Contains(err.Error(), dir+": is a directory") || strings.Contains(err.Error(), dir+":1:") {
			t.Errorf("%s in a directory: %v; want %q without a line", what, err, dir+": is a directory")
		}
	}
}
