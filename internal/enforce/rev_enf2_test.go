package enforce

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRevEnf2BanListNoYearOne: a ban written by hand with until= only is
// in force already (docs/enforce.md: "from defaults to added, and both to
// in force already"); "relaykeeper bans list" printed its FROM as
// 0001-01-01T00:00:00Z.
func TestRevEnf2BanListNoYearOne(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans")
	if err := os.WriteFile(path, []byte("203.0.113.9 until=2099-11-22T14:00:10Z\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := OpenBans(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := WriteBanList(&out, b.List(), false, nil); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "0001-01-01") || !strings.Contains(out.String(), "203.0.113.9  -  ") {
		t.Errorf("bans list:\n%s\nwant FROM shown as - for a ban in force already", out.String())
	}
}
