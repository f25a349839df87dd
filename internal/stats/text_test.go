package stats

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestWriteTextGolden renders the golden log's report as text; the
// command's own test (cmd/relaykeeper) pins the same file through its
// switches, stdin and gzip handling.
func TestWriteTextGolden(t *testing.T) {
	a := NewAggregator()
	if err := a.ReadFile(filepath.Join("testdata", "mail.log"), nil); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	WriteText(&got, a.Report(10))
	want, err := os.ReadFile(filepath.Join("testdata", "report.txt.golden"))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(string(want), got.String()); d != "" {
		t.Errorf("WriteText differs from report.txt.golden (-want +got):\n%s", d)
	}
}

func TestReadFileMissing(t *testing.T) {
	name := filepath.Join(t.TempDir(), "absent.log")
	if err := NewAggregator().ReadFile(name, nil); err == nil || !bytes.Contains([]byte(err.Error()), []byte("absent.log")) {
		t.Errorf("ReadFile(%q) = %v; want an error naming the file", name, err)
	}
}
