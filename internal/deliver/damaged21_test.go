package deliver

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestDamagedWhileRunningSetAside: a ready message whose content file is
// emptied (a filter, a hand edit) or replaced by a named pipe while the
// relay runs can never be claimed. The queue logged "claim failed" at
// ERROR at every poll (every second with --poll 1), tried it again each
// time, and only the next start set it aside. It is now set aside in the
// quarantine directory at the first failed claim, as recovery would, and
// the next run does not see it.
func TestDamagedWhileRunningSetAside(t *testing.T) {
	for _, damage := range []string{"emptied", "pipe"} {
		t.Run(damage, func(t *testing.T) {
			up := startUpstream(t)
			sp, s, _, id := setup(t, up.addr, "a@example.net")
			content := filepath.Join(sp.Dir(), id+".content")
			switch damage {
			case "emptied":
				if err := os.Truncate(content, 0); err != nil {
					t.Fatal(err)
				}
			case "pipe":
				os.Remove(content)
				if err := syscall.Mkfifo(content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(filepath.Join(sp.Dir(), ".quarantine", id+".content")); err != nil {
				t.Errorf("the %s message's content is not in quarantine: %v", damage, err)
			}
			if _, _, err := sp.Read(id); err == nil {
				t.Errorf("the %s message is still in the queue", damage)
			}
			sum, err := s.RunOnce(context.Background())
			if err != nil || sum.Untried != 0 {
				t.Errorf("the next run: %+v, %v; want nothing left untried", sum, err)
			}
			if got := up.got(); len(got) != 0 {
				t.Errorf("upstream got %v; want nothing", got)
			}
		})
	}
}
