package eightbit

import (
	"bytes"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestReview33PeakHeap(t *testing.T) {
	body := bytes.Repeat([]byte("caf\xc3\xa9 "+strings.Repeat("x", 60)+"\r\n"), 50<<20/68)
	msg := append([]byte("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"), body...)
	body = nil
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var m runtime.MemStats
		for {
			select {
			case <-stop:
				return
			default:
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > peak.Load() {
				peak.Store(m.HeapAlloc)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	var n countWriter
	downgradeBytes(&n, msg)
	close(stop)
	t.Logf("message %d MB; heap above the message itself at peak: %d MB", len(msg)>>20, (peak.Load()-base.HeapAlloc)>>20)
}
