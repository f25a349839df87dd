package enforce

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocs26OpenBansByHandMistypedSpool: "relaykeeper bans list
// --spool-dir TYPO" made TYPO/.enforce, an empty spool, and listed no
// bans with exit 0; "bans add" banned into a file the relay never reads.
// A spool that does not exist is now an error, and nothing is made.
func TestDocs26OpenBansByHandMistypedSpool(t *testing.T) {
	dir := t.TempDir()
	typo := filepath.Join(dir, "spoool")
	_, err := OpenBansByHand(filepath.Join(StateDir(typo), "bans"))
	if err == nil || !strings.Contains(err.Error(), typo+" does not exist") {
		t.Errorf("OpenBansByHand(in a missing spool) = %v; want %q", err, typo+" does not exist")
	}
	if _, err := os.Stat(typo); !os.IsNotExist(err) {
		t.Errorf("OpenBansByHand made %s (stat: %v); want nothing made", typo, err)
	}
	// A spool that exists gets its enforcer directory, as before.
	if _, err := OpenBansByHand(filepath.Join(StateDir(dir), "bans")); err != nil {
		t.Errorf("OpenBansByHand(in an existing spool) = %v", err)
	}
}
