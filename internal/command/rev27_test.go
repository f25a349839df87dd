package command

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func threads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	return 0
}

// TestRev27PdeathsigUnderThreadChurn: programs started by Run while other
// goroutines end their OS threads (LockOSThread without Unlock, as a
// library may) are not killed early by Pdeathsig, a timeout still kills
// its program, and rounds of concurrent runs do not keep threads.
func TestRev27PdeathsigUnderThreadChurn(t *testing.T) {
	stop := make(chan struct{})
	var churn sync.WaitGroup
	for range 4 {
		churn.Add(1)
		go func() {
			defer churn.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				done := make(chan struct{})
				go func() { runtime.LockOSThread(); close(done) }() // its thread ends
				<-done
				time.Sleep(time.Millisecond)
			}
		}()
	}
	defer func() { close(stop); churn.Wait() }()
	const n = 40
	var peak []int
	for round := range 3 {
		var wg sync.WaitGroup
		res := make([]Result, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				opts := Options{}
				if i%10 == 0 {
					opts.Timeout = 200 * time.Millisecond
				}
				res[i], errs[i] = Run(context.Background(), []string{"/bin/sh", "-c", "sleep 0.6; echo done"}, opts)
			}()
		}
		wg.Wait()
		for i := range n {
			switch {
			case errs[i] != nil:
				t.Errorf("round %d run %d: %v", round, i, errs[i])
			case i%10 == 0 && !res[i].TimedOut:
				t.Errorf("round %d run %d: %+v; want a timeout", round, i, res[i])
			case i%10 != 0 && (res[i].Signaled || res[i].Stdout != "done\n"):
				t.Errorf("round %d run %d: %+v; want exit 0 and \"done\"", round, i, res[i])
			}
		}
		peak = append(peak, threads(t))
	}
	t.Logf("threads after each round: %v", peak)
	if peak[2] > peak[0]+20 {
		t.Errorf("threads after each round of %d runs: %v; want no growth", n, peak)
	}
}
