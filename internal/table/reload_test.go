package table

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// rewrite replaces a table file and moves its mtime forward, so that a
// rewrite within the file system's timestamp granularity is still seen.
func rewrite(t *testing.T, path, content string, bump int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	when := time.Now().Add(time.Duration(bump) * time.Second)
	if err := os.Chtimes(path, when, when); err != nil {
		t.Fatal(err)
	}
}

func TestReload(t *testing.T) {
	path := writeFile(t, "access", "a OK\n")
	tb := mustOpen(t, "hash:"+path)

	if changed, err := tb.Reload(); changed || err != nil {
		t.Fatalf("Reload() of an unchanged file = %v, %v; want false, nil", changed, err)
	}

	rewrite(t, path, "a REJECT\n", 1)
	if changed, err := tb.Reload(); !changed || err != nil {
		t.Fatalf("Reload() after a change = %v, %v; want true, nil", changed, err)
	}
	if got, _ := tb.Lookup("a"); got != "REJECT" {
		t.Errorf("after reload, Lookup(a) = %q; want REJECT", got)
	}

	// A broken file leaves the old contents in force; every problem is
	// reported with FILE:LINE, and again on the next call.
	rewrite(t, path, "a DISCARD\nbroken\n   \nalso-broken\n", 2)
	for i := 0; i < 2; i++ {
		changed, err := tb.Reload()
		if changed || err == nil {
			t.Fatalf("Reload() of a broken file = %v, %v; want false and errors", changed, err)
		}
		for _, want := range []string{path + ":2: ", path + ":4: "} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Reload() error %q does not contain %q", err, want)
			}
		}
		if got, _ := tb.Lookup("a"); got != "REJECT" {
			t.Errorf("after a failed reload, Lookup(a) = %q; want the old REJECT", got)
		}
	}

	// Fixing the file brings the new contents in.
	rewrite(t, path, "a DISCARD\n", 3)
	if changed, err := tb.Reload(); !changed || err != nil {
		t.Fatalf("Reload() of the fixed file = %v, %v; want true, nil", changed, err)
	}
	if got, _ := tb.Lookup("a"); got != "DISCARD" {
		t.Errorf("Lookup(a) = %q; want DISCARD", got)
	}

	// Replacing the file by rename (a new inode) with the same size and
	// mtime is noticed too.
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := filepath.Join(filepath.Dir(path), "access.new")
	if err := os.WriteFile(tmp, []byte("a HOLD123\n"), 0o644); err != nil { // same size as "a DISCARD\n"
		t.Fatal(err)
	}
	if err := os.Chtimes(tmp, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if changed, err := tb.Reload(); !changed || err != nil {
		t.Fatalf("Reload() after rename = %v, %v; want true, nil", changed, err)
	}

	// A removed file is an error; the contents stay.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := tb.Reload(); err == nil {
		t.Errorf("Reload() of a removed file succeeded")
	}
	if got, _ := tb.Lookup("a"); got != "HOLD123" {
		t.Errorf("Lookup(a) = %q; want HOLD123", got)
	}

	// Tables without a file never change.
	if changed, err := mustOpen(t, "static:OK").Reload(); changed || err != nil {
		t.Errorf("static Reload() = %v, %v; want false, nil", changed, err)
	}
}

func TestSetReloadAll(t *testing.T) {
	good := writeFile(t, "good", "a OK\n")
	bad := writeFile(t, "bad.cidr", "10.0.0.0/8 OK\n")
	var s Set
	for _, spec := range []string{"hash:" + good, "cidr:" + bad, "static:x"} {
		if _, err := s.Open(spec); err != nil {
			t.Fatal(err)
		}
	}
	rewrite(t, good, "a REJECT\n", 1)
	rewrite(t, bad, "10.0.0.1/8 OK\n", 1)
	errs := s.ReloadAll()
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), bad+":1: non-null host address bits") {
		t.Errorf("ReloadAll() = %v; want one error for %s:1", errs, bad)
	}
	tables := s.Tables()
	if got, _ := tables[0].Lookup("a"); got != "REJECT" {
		t.Errorf("good table: Lookup(a) = %q; want REJECT", got)
	}
	if got, _ := tables[1].Lookup("10.1.2.3"); got != "OK" {
		t.Errorf("bad table: Lookup = %q; want the old OK", got)
	}
}

// Lookups run while the file is rewritten and reloaded; run with -race.
// Every answer must be one of the complete versions of the file.
func TestConcurrentLookupDuringReload(t *testing.T) {
	path := writeFile(t, "access", version(0))
	tb := mustOpen(t, "hash:"+path)
	const versions = 50
	stop := make(chan struct{})
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() { // exits when stop is closed
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				a, okA := tb.LookupAddress("x@a.example")
				b, okB := tb.Lookup("b.example")
				if !okA || !okB || !strings.HasPrefix(a, "v") || !strings.HasPrefix(b, "v") {
					select {
					case errs <- fmt.Sprintf("lookup = %q %v, %q %v", a, okA, b, okB):
					default:
					}
					return
				}
			}
		}()
	}
	for v := 1; v <= versions; v++ {
		content := version(v)
		if v%5 == 0 {
			content += "broken\n"
		}
		rewrite(t, path, content, v)
		if _, err := tb.Reload(); (err != nil) != (v%5 == 0) {
			t.Errorf("version %d: Reload() error = %v", v, err)
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if got, _ := tb.Lookup("a.example"); got != fmt.Sprintf("v%d", versions-1) {
		t.Errorf("final Lookup = %q; want v%d (v%d was broken)", got, versions-1, versions)
	}
}

func version(v int) string {
	return fmt.Sprintf("a.example v%d\nb.example v%d\n", v, v)
}
