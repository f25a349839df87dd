package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// BenchmarkSpoolFileOps measures what the file system alone charges for a
// drained message of E-MailRelay's layout, without any relay: for each of
// RK_BENCH_MESSAGES (20,000) messages of a 400-octet envelope and a 4 KiB
// content, made and written back first, the calls a forwarder cannot do
// without, one kind at a time over all the messages: read the envelope
// (open, read, close), open and lock the content, read it, rename the
// envelope to .busy (the claim, which is E-MailRelay's lock), unlink both
// files, and close the content, which is where its inode is freed. Each
// call's CPU time per message is reported ("<call>-cpu-us"), and their sum
// ("floor-cpu-us/msg") is what BenchmarkSchedulerDrain's
// relay-cpu-us/msg cannot go below on the same file system. TMPDIR picks
// the file system:
//
//	TMPDIR=/mnt/ext4/tmp go test -run XXX -bench SpoolFileOps -benchtime 1x ./bench/
func BenchmarkSpoolFileOps(b *testing.B) {
	n := envInt("RK_BENCH_MESSAGES", 20000)
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		env, content := make([]byte, 400), make([]byte, 4096)
		name := func(i int, suffix string) string { return filepath.Join(dir, fmt.Sprintf("%016X%s", i, suffix)) }
		for i := range n {
			if err := os.WriteFile(name(i, ".content"), content, 0o640); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(name(i, ".envelope"), env, 0o640); err != nil {
				b.Fatal(err)
			}
		}
		syncDir(b, dir)
		buf := make([]byte, 4096)
		// In batches, so that the contents held open stay under the
		// descriptor limit.
		const batch = 1000
		fds := make([]int, batch)
		var names []string
		cpu := map[string]time.Duration{}
		var lo, hi int
		step := func(metric string, op func(i int) error) {
			if lo == 0 {
				names = append(names, metric)
			}
			c0 := selfCPU()
			for i := lo; i < hi; i++ {
				if err := op(i); err != nil {
					b.Fatalf("%s: message %d: %v", metric, i, err)
				}
			}
			cpu[metric] += selfCPU() - c0
		}
		b.StartTimer()
		for lo = 0; lo < n; lo += batch {
			hi = min(lo+batch, n)
			step("read-envelope", func(i int) error {
				fd, err := unix.Open(name(i, ".envelope"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					return err
				}
				_, err = unix.Read(fd, buf)
				unix.Close(fd)
				return err
			})
			step("open-lock-content", func(i int) error {
				fd, err := unix.Open(name(i, ".content"), unix.O_RDWR|unix.O_CLOEXEC, 0)
				fds[i-lo] = fd
				if err != nil {
					return err
				}
				return unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
			})
			step("read-content", func(i int) error {
				_, err := unix.Pread(fds[i-lo], buf, 0)
				return err
			})
			step("rename-busy", func(i int) error { return unix.Rename(name(i, ".envelope"), name(i, ".envelope.busy")) })
			step("unlink-envelope", func(i int) error { return unix.Unlink(name(i, ".envelope.busy")) })
			step("unlink-content", func(i int) error { return unix.Unlink(name(i, ".content")) })
			step("close-content", func(i int) error { return unix.Close(fds[i-lo]) })
		}
		b.StopTimer()
		var floor time.Duration
		for _, m := range names {
			floor += cpu[m]
			b.ReportMetric(float64(cpu[m].Microseconds())/float64(n), m+"-cpu-us")
		}
		b.ReportMetric(float64(floor.Microseconds())/float64(n), "floor-cpu-us/msg")
		b.Logf("%d messages: the file system's floor is %.1f µs of CPU a message", n, float64(floor.Microseconds())/float64(n))
	}
}

// BenchmarkJournalBacklogOps is BenchmarkSpoolFileOps for the design
// issue 12 names and the spool does not have: a backlog kept in the
// journal's segments rather than a file per message. For each of
// RK_BENCH_MESSAGES (20,000) records of the same 400-octet envelope and
// 4 KiB content, appended to 64 MiB segments and synced first, it does
// what a forwarder of such a backlog cannot do without: read the record
// (one pread on a segment held open), note it done (a 32-octet note,
// written 64 notes at a time and fdatasynced once per 1,000, as a group
// commit and the once-a-second checkpoint would), and remove each segment
// once every record in it is done. Its "floor-cpu-us/msg" is what such a
// design would leave of the file system's share of a drained message,
// beside BenchmarkSpoolFileOps' floor for E-MailRelay's layout.
//
//	TMPDIR=/mnt/ext4/tmp go test -run XXX -bench JournalBacklogOps -benchtime 1x ./bench/
func BenchmarkJournalBacklogOps(b *testing.B) {
	n := envInt("RK_BENCH_MESSAGES", 20000)
	const recSize, segSize = 400 + 4096 + 16, 64 << 20
	perSeg := segSize / recSize
	for range b.N {
		b.StopTimer()
		dir := b.TempDir()
		rec := make([]byte, recSize)
		var segs []int
		for i := 0; i < n; i += perSeg {
			fd, err := unix.Open(filepath.Join(dir, fmt.Sprintf("%08d.log", len(segs))), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o640)
			if err != nil {
				b.Fatal(err)
			}
			for j := i; j < min(i+perSeg, n); j++ {
				if _, err := unix.Write(fd, rec); err != nil {
					b.Fatal(err)
				}
			}
			unix.Fsync(fd)
			segs = append(segs, fd)
		}
		done, err := unix.Open(filepath.Join(dir, "done.log"), unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND|unix.O_CLOEXEC, 0o640)
		if err != nil {
			b.Fatal(err)
		}
		syncDir(b, dir)
		buf := make([]byte, recSize)
		notes := make([]byte, 0, 64*32)
		b.StartTimer()
		c0 := selfCPU()
		for i := range n {
			if _, err := unix.Pread(segs[i/perSeg], buf, int64(i%perSeg)*recSize); err != nil {
				b.Fatal(err)
			}
			notes = append(notes, make([]byte, 32)...)
			if len(notes) == cap(notes) || i == n-1 {
				if _, err := unix.Write(done, notes); err != nil {
					b.Fatal(err)
				}
				notes = notes[:0]
			}
			if i%1000 == 999 || i == n-1 {
				unix.Fdatasync(done)
			}
			if i%perSeg == perSeg-1 || i == n-1 {
				unix.Close(segs[i/perSeg])
				if err := unix.Unlink(filepath.Join(dir, fmt.Sprintf("%08d.log", i/perSeg))); err != nil {
					b.Fatal(err)
				}
			}
		}
		cpu := selfCPU() - c0
		b.StopTimer()
		unix.Close(done)
		b.ReportMetric(float64(cpu.Microseconds())/float64(n), "floor-cpu-us/msg")
		b.Logf("%d messages: a journal-resident backlog's floor is %.1f µs of CPU a message", n, float64(cpu.Microseconds())/float64(n))
	}
}
