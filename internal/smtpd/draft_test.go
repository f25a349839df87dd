package smtpd

import (
	"bytes"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

var (
	_ draft = (*spool.Writer)(nil)
	_ draft = (*proxyDraft)(nil)
)

// scratchFiles lists the proxy's scratch directory.
func scratchFiles(t *testing.T, sp *spool.Spool) []string {
	t.Helper()
	des, err := os.ReadDir(sp.ScratchDir())
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	return names
}

// TestProxyDraft: a proxied message touches the disk only when it outgrows
// memory or a file is asked for, and Abort leaves nothing behind.
func TestProxyDraft(t *testing.T) {
	for _, tc := range []struct {
		name      string
		size      int
		filter    bool
		askPath   bool
		wantFiles int // scratch files before Abort
	}{
		{"small in memory", 4 << 10, false, false, 0},
		{"several chunks in memory", chunkSize + 7, false, false, 0},
		{"whole chunks in memory", 2 * chunkSize, false, false, 0},
		{"large spills", proxyMemLimit + 1, false, false, 1},
		{"filter gets both files", 4 << 10, true, false, 2},
		{"enforcer asks for the content", 4 << 10, false, true, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sp, err := spool.Open(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			d := newProxyDraft(sp, time.Now(), tc.filter, &sync.Pool{})
			want := make([]byte, tc.size)
			for i := range want {
				want[i] = byte(i % 251)
			}
			for p := want; len(p) > 0; {
				n := min(len(p), 1000)
				if _, err := d.Write(p[:n]); err != nil {
					t.Fatal(err)
				}
				p = p[n:]
			}
			if err := d.Prepare(&spool.Envelope{From: "a@b.test"}); err != nil {
				t.Fatal(err)
			}
			if tc.askPath {
				if got, err := os.ReadFile(d.ContentPath()); err != nil || !bytes.Equal(got, want) {
					t.Errorf("ContentPath holds %d bytes, err %v; want %d", len(got), err, len(want))
				}
			}
			if got := len(scratchFiles(t, sp)); got != tc.wantFiles {
				t.Errorf("scratch files = %d; want %d", got, tc.wantFiles)
			}
			r, n, err := d.Content()
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			if n != int64(len(want)) || !bytes.Equal(got, want) || d.Size() != int64(len(want)) {
				t.Errorf("Content = %d bytes (size %d, Size %d); want %d", len(got), n, d.Size(), len(want))
			}
			// Again, as io.Copy reads it: through its WriteTo.
			r, _, err = d.Content()
			if err != nil {
				t.Fatal(err)
			}
			var copied bytes.Buffer
			if _, err := io.Copy(&copied, r); err != nil || !bytes.Equal(copied.Bytes(), want) {
				t.Errorf("io.Copy(Content) = %d bytes, %v; want %d", copied.Len(), err, len(want))
			}
			d.Abort()
			if left := scratchFiles(t, sp); len(left) != 0 {
				t.Errorf("after Abort: %v left", left)
			}
			if es, _ := sp.List(); len(es) != 0 {
				t.Errorf("spool holds %v; want nothing", es)
			}
		})
	}
}
