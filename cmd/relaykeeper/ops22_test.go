package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOps22OperationsListsManPages: docs/operations.md's table of what
// "make install" puts in place names every man page it installs (it
// left out relaykeeper-completion(8)).
func TestOps22OperationsListsManPages(t *testing.T) {
	b, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	var row string
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "| man pages:") {
			row = line
		}
	}
	if row == "" {
		t.Fatal("docs/operations.md: no \"| man pages:\" row")
	}
	pages, err := filepath.Glob("../../docs/man/*.[58]")
	if err != nil || len(pages) == 0 {
		t.Fatalf("no man pages in docs/man (%v)", err)
	}
	for _, p := range pages {
		name := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		short := strings.TrimPrefix(name, "relaykeeper")
		if !strings.Contains(row, name+"(") && !strings.Contains(row, " "+short+",") && !strings.HasSuffix(strings.TrimSpace(strings.Split(row, "|")[1]), " "+short) {
			t.Errorf("docs/operations.md's man pages row does not name %s:\n%s", filepath.Base(p), row)
		}
	}
}
