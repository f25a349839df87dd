package rewrite

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestRevDocsReloadedBadValueWarns: a value that is no address is refused
// at start, but one written into a table reloaded later mapped nothing
// without a word, so an operator's typo went unnoticed while mail kept
// its unmapped sender. Each such lookup is now logged with the address
// and the value.
func TestRevDocsReloadedBadValueWarns(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sender_canonical")
	if err := os.WriteFile(path, []byte("root@host.local alerts@example.com\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	set := &table.Set{}
	c, err := Open(set, Maps{Sender: []string{"hash:" + path}, Log: slog.New(slog.NewTextHandler(&buf, nil))}, "")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("root@host.local not-an-address\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	future := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, future, future); err != nil {
		t.Fatal(err)
	}
	if errs := set.ReloadAll(); len(errs) != 0 {
		t.Fatal(errs)
	}
	if got := c.SenderAddr("root@host.local"); got != "root@host.local" {
		t.Errorf("SenderAddr = %q; want it unmapped", got)
	}
	if log := buf.String(); !strings.Contains(log, "not-an-address") || !strings.Contains(log, "root@host.local") {
		t.Errorf("no warning naming the address and the value: %q", log)
	}
}
