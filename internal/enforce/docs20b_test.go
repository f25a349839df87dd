package enforce

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocs20StateFilesDefaults: an empty [enforce] welcomelist,
// sender_access or bans is a file in the spool's .enforce directory
// (Files.Prepare), and etc/relaykeeper.toml says so. It said nothing, and
// "make install" puts an example welcomelist in /etc/relaykeeper/, which
// postfix-enforcer reads by default but the relay does not: an
// administrator who listed a partner's server there still saw it banned.
func TestDocs20StateFilesDefaults(t *testing.T) {
	spool := t.TempDir()
	f, err := Files{}.Prepare(spool)
	if err != nil {
		t.Fatal(err)
	}
	example, err := os.ReadFile("../../etc/relaykeeper.toml")
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(example), "\n[enforce]\n")
	for key, path := range map[string]string{"welcomelist": f.Welcomelist, "sender_access": f.SenderAccess, "bans": f.Bans} {
		rel, err := filepath.Rel(spool, path)
		if err != nil || strings.HasPrefix(rel, "..") {
			t.Fatalf("%s: %s is not in the spool %s", key, path, spool)
		}
		before, _, ok := strings.Cut(section, "\n"+key+" = ")
		comment := before[strings.LastIndex(before, "\"")+1:] // the comment lines after the key before it
		if !ok || !strings.Contains(comment, "SPOOL/"+rel) {
			t.Errorf("etc/relaykeeper.toml: the comment on [enforce] %s does not say that empty means SPOOL/%s:\n%s", key, rel, comment)
		}
	}
}
