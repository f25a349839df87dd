package bench

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// BenchmarkJournalSync measures what one synced journal record of a 4 KiB
// message costs on the file system of TMPDIR, the way a session at one
// session pays it before its 250: a write then fdatasync, either appended
// (the file grows, so the sync also writes the inode, and on a journaling
// file system commits that journal) or over zeros written and synced
// beforehand (spool/prealloc.go). It reports µs a record for each:
//
//	TMPDIR=/var/tmp go test -run XXX -bench JournalSync -benchtime 2000x ./bench/
func BenchmarkJournalSync(b *testing.B) {
	rec := make([]byte, 4300)
	for i := range rec {
		rec[i] = 'x'
	}
	for _, tc := range []struct {
		name   string
		zeroed bool
	}{{"append", false}, {"overwrite", true}} {
		b.Run(tc.name, func(b *testing.B) {
			f, err := os.Create(filepath.Join(b.TempDir(), "segment"))
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			if tc.zeroed {
				if _, err := f.Write(make([]byte, (b.N+1)*len(rec))); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := f.WriteAt(rec, int64(i*len(rec))); err != nil {
					b.Fatal(err)
				}
				if err := unix.Fdatasync(int(f.Fd())); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N), "us/record")
		})
	}
}
