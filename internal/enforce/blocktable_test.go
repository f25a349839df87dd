package enforce

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestBlockTableBlockListUnblock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sender_access")
	// As BlockSenderDomain writes it (which runs postmap, tested there).
	if err := os.WriteFile(path, []byte("# by hand\nfriend.example OK\n# 2026-12-05T10:00:00Z relaykeeper: test\nspam.example REJECT\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tb := BlockTable{Path: path}
	got, err := tb.BlockedDomains()
	want := []BlockedDomain{
		{Domain: "friend.example", Action: "OK"},
		{Domain: "spam.example", Action: "REJECT", Reason: "2026-12-05T10:00:00Z relaykeeper: test"},
	}
	if err != nil || !cmp.Equal(got, want) {
		t.Fatalf("BlockedDomains = %v, %v; diff (-got +want):\n%s", got, err, cmp.Diff(got, want))
	}
	if removed, err := tb.Unblock("SPAM.example"); !removed || err != nil {
		t.Fatalf("Unblock = %v, %v; want removed", removed, err)
	}
	if removed, _ := tb.Unblock("spam.example"); removed {
		t.Errorf("second Unblock removed something")
	}
	b, _ := os.ReadFile(path)
	if string(b) != "# by hand\nfriend.example OK\n" {
		t.Errorf("table after Unblock = %q; want the hand-written part only", b)
	}
}
