package queue

import (
	"os"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestSpool21EmptyContentListed: a message whose content file is empty is
// never delivered (the spool refuses to claim it, recovery sets it aside),
// so the listing says it is damaged, as it does for a missing content
// file, rather than show a ready message of 0 bytes that never goes.
func TestSpool21EmptyContentListed(t *testing.T) {
	s, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := addMessage(t, s, "a@example.com", []string{"b@example.net"}, false, nil, spool.Ready)
	if err := os.Truncate(s.ContentPath(id), 0); err != nil {
		t.Fatal(err)
	}
	m, err := Get(s, id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Error, "empty") {
		t.Errorf("Get(empty content).Error = %q; want it to say the content file is empty", m.Error)
	}
}
