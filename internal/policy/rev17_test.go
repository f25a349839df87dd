package policy

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestRev17RelayDomainsFilesAnywhere: relay_domains is a Postfix match
// list, as mynetworks is (TestAud3NegationEverywhere): a "/file/name" or a
// "type:table" may stand among the names of an item ("a.example,
// !/etc/postfix/relay_exclude") and on a file's lines. relay_domains took
// them there for domain names: the "!/FILE" excluded nothing (mail to the
// domains in FILE was relayed), and a file named on a file's line, or a
// table there, was never read.
func TestRev17RelayDomainsFilesAnywhere(t *testing.T) {
	dir := t.TempDir()
	exclude := filepath.Join(dir, "relay_exclude")
	os.WriteFile(exclude, []byte("sub.second.example\n"), 0o644)
	inner := filepath.Join(dir, "inner")
	os.WriteFile(inner, []byte("inner.example\n"), 0o644)
	file := filepath.Join(dir, "relay_domains")
	os.WriteFile(file, []byte(inner+"\ninline:{ tabled.example=ok }\n"), 0o644)
	rd, err := parseRelayDomains([]string{"first.example, !" + exclude + ", second.example", file},
		SetTables{Set: &table.Set{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for d, want := range map[string]bool{"first.example": true, "sub.second.example": false, "second.example": true,
		"inner.example": true, "tabled.example": true, "other.example": false} {
		if got := rd.has(d); got != want {
			t.Errorf("relay_domains has %s = %v; want %v", d, got, want)
		}
	}
}
