package table

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestDocs26SetWarn: docs/tables.md says a later duplicate key and a
// "key: value" line are reported as warnings, as postmap does; the Set
// kept them and nobody ever saw them. Warn now gets them when a table
// opens and when a changed file comes into force.
func TestDocs26SetWarn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "access")
	if err := os.WriteFile(path, []byte("example.com REJECT\nexample.com OK\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var got []string
	s := &Set{Warn: func(w string) { got = append(got, w) }}
	if _, err := s.Open("hash:" + path); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open("texthash:" + path); err != nil { // the same table: no second warning
		t.Fatal(err)
	}
	want := []string{path + `:2: duplicate entry "example.com" ignored; the entry at line 1 stays in force`}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("warnings at Open (-want +got):\n%s", diff)
	}

	got = nil
	if errs := s.ReloadAll(); len(errs) != 0 || len(got) != 0 {
		t.Errorf("ReloadAll() of an unchanged file = %v, warnings %q; want none", errs, got)
	}
	if err := os.WriteFile(path, []byte("example.com REJECT\nkey: OK\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute)
	if err := os.Chtimes(path, later, later); err != nil {
		t.Fatal(err)
	}
	if errs := s.ReloadAll(); len(errs) != 0 {
		t.Fatalf("ReloadAll() = %v", errs)
	}
	if len(got) != 1 || !strings.HasPrefix(got[0], path+":2: ") || !strings.Contains(got[0], "alias file") {
		t.Errorf("warnings at reload = %q; want %s:2's \"is this an alias file?\"", got, path)
	}
}
