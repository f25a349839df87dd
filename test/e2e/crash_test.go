package e2e

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

var tagRE = regexp.MustCompile(`(?m)^Subject: (crash-tag-\d+)\r?$`)

// tagSender sends uniquely tagged messages, one per connection, retrying
// each until it is acknowledged with 250, and records which were.
type tagSender struct {
	addr string
	// body makes the message for a tag; message if nil.
	body func(tag string) string

	mu       sync.Mutex
	next     int
	acked    map[string]string // tag -> the id in the relay's 250; guarded by mu
	retries  int               // guarded by mu
	rejected []string          // tags refused with a 5xx; guarded by mu
}

func (s *tagSender) newTag() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.next++
	return fmt.Sprintf("crash-tag-%06d", s.next)
}

// run sends until stop is closed; it finishes the message in hand first
// (bounded by the client's own timeouts and 50 tries).
func (s *tagSender) run(stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		default:
		}
		tag := s.newTag()
		for try := 0; try < 50; try++ {
			body := message(tag)
			if s.body != nil {
				body = s.body(tag)
			}
			tx, err := sendMail(s.addr, "tagger@example.org", []string{"crash@example.net"}, body)
			if err == nil {
				id := strings.TrimPrefix(strings.Join(tx.Final, ""), "250 2.0.0 OK: queued as ")
				s.mu.Lock()
				s.acked[tag] = id
				s.mu.Unlock()
				break
			}
			if errors.Is(err, errRefused) && lastCode(tx)/100 == 5 {
				s.mu.Lock()
				s.rejected = append(s.rejected, fmt.Sprintf("%s: %q", tag, tx))
				s.mu.Unlock()
				break
			}
			s.mu.Lock()
			s.retries++
			s.mu.Unlock()
			select {
			case <-stop:
				if try > 3 {
					return // the relay is gone for good
				}
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

// lastCode is the code of the last reply a transaction got.
func lastCode(tx transaction) int {
	for _, r := range []reply{tx.Final, tx.Data} {
		if r != nil {
			return r.code()
		}
	}
	if len(tx.Rcpt) > 0 {
		return tx.Rcpt[len(tx.Rcpt)-1].code()
	}
	for _, r := range []reply{tx.Mail, tx.Ehlo, tx.Greeting} {
		if r != nil {
			return r.code()
		}
	}
	return 0
}

// start runs s in n goroutines, counted in wg, until stop is closed.
func (s *tagSender) start(n int, stop <-chan struct{}, wg *sync.WaitGroup) {
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.run(stop)
		}()
	}
}

// acknowledged is what s had acknowledged, once its goroutines have
// stopped. The test fails if that is fewer than least (not a real load)
// or if any message was refused with a 5xx.
func (s *tagSender) acknowledged(t *testing.T, least int) map[string]string {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.acked) < least {
		t.Errorf("only %d messages acknowledged; want a real load (at least %d)", len(s.acked), least)
	}
	for _, rej := range s.rejected {
		t.Errorf("message refused with a 5xx: %s", rej)
	}
	return s.acked
}

// killLoop calls kill(i) for i from 0 to kills-1, each time after a
// pause of pause and up to spread more, while the load runs.
func killLoop(kills int, pause, spread time.Duration, kill func(i int)) {
	for i := range kills {
		time.Sleep(pause + rand.N(spread))
		kill(i)
	}
}

// killRestart kills r with SIGKILL and restarts it on the same port and
// spool, logging it as kill i+1: killLoop's usual kill.
func killRestart(t *testing.T, r *relay) func(i int) {
	return func(i int) {
		r.kill()
		r.restart()
		t.Logf("kill %d: SIGKILL and restart", i+1)
	}
}

// stopLoad closes stop and waits for the load's goroutines counted in wg;
// the test fails if they (what) still run limit after.
func stopLoad(t *testing.T, stop chan struct{}, wg *sync.WaitGroup, limit time.Duration, what string) {
	t.Helper()
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(limit):
		t.Fatalf("%s still running %ds after being told to stop", what, int(limit/time.Second))
	}
}

// TestCrashUnderLoad kills the relay with SIGKILL several times while
// smtp-source and a tagging sender load it, restarting it each time on the
// same port and spool. Every message acknowledged with 250 must reach the
// sink; duplicates are allowed (a delivery cut short is redone), losses
// are not. The spool must end empty but for quarantined files, each
// reported in the mail log.
func TestCrashUnderLoad(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("smtp-source"); err != nil {
		if _, err := os.Stat("/usr/sbin/smtp-source"); err != nil {
			harness.Missing(t, "smtp-source is not installed (run scripts/test-deps.sh)")
		}
	}
	spool := t.TempDir()
	sink := harness.StartSink(t, harness.SinkOptions{})
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect",
		"--poll", "1", "--config", writeConfig(t, "[smtp]\nshutdown_grace = \"5s\"\n"),
		"--interface", "127.0.0.1", "--spool-dir", spool)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	sender := &tagSender{addr: r.addr(), acked: map[string]string{}}
	// Every third tagged message is 200 KB: past what the relay keeps in
	// memory, it is received into a scratch file and served from its
	// journal record (docs/spool.md), a path a kill must not lose either.
	var big atomic.Int64
	filler := strings.Repeat(strings.Repeat("z", 998)+"\n", 200)
	sender.body = func(tag string) string {
		if big.Add(1)%3 == 0 {
			return message(tag) + filler
		}
		return message(tag)
	}
	sender.start(2, stop, &wg)
	var sourceRuns, sourceFailed int // written by the source goroutine only, read after wg.Wait
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, err := harness.Source(t, harness.SourceOptions{Addr: r.addr(), Messages: 100, Sessions: 4,
				Size: 2000, Subject: "smtp-source load", Timeout: 20 * time.Second})
			sourceRuns++
			if err != nil {
				sourceFailed++
				time.Sleep(50 * time.Millisecond)
			}
		}
	}()

	const kills = 5
	killLoop(kills, 400*time.Millisecond, 1200*time.Millisecond, killRestart(t, r))
	time.Sleep(time.Second)
	stopLoad(t, stop, &wg, 60*time.Second, "load generators")
	acked := sender.acknowledged(t, 20)

	// Everything acknowledged reaches the sink, and the spool drains.
	var delivered map[string]int
	var total int
	missing := func() []string {
		msgs := sink.Messages()
		total = len(msgs)
		delivered = map[string]int{}
		for _, m := range msgs {
			if mm := tagRE.FindStringSubmatch(m.Data); mm != nil {
				delivered[mm[1]]++
			}
		}
		var miss []string
		for tag := range acked {
			if delivered[tag] == 0 {
				miss = append(miss, tag)
			}
		}
		return miss
	}
	waitFor(60*time.Second, func() bool { return len(missing()) == 0 && len(spoolFiles(t, spool)) == 0 })
	miss := missing()
	dups := 0
	for _, n := range delivered {
		dups += n - 1
	}
	t.Logf("crash test: %d kills; tagged: %d acknowledged, %d distinct delivered, %d duplicates, %d sender retries; "+
		"sink total %d (smtp-source %d runs, %d cut short)",
		kills, len(acked), len(delivered), dups, sender.retries, total, sourceRuns, sourceFailed)
	if len(miss) > 0 {
		t.Errorf("%d acknowledged messages never reached the sink (lost): %v", len(miss), first(miss, 20))
	}
	if files := spoolFiles(t, spool); len(files) != 0 {
		t.Errorf("spool still holds %v after 60s; want only quarantined files", files)
	}
	reported := map[string]bool{}
	for _, e := range r.events("quarantine") {
		reported[e.Get("id")] = true
	}
	qfiles := quarantined(t, spool)
	qids := map[string]bool{}
	ackedQuarantined := 0
	for _, name := range qfiles {
		id, _, _ := strings.Cut(name, ".")
		qids[id] = true
		if !reported[id] {
			t.Errorf("quarantined %s without a \"quarantine id=%s\" mail-log line", name, id)
		}
		if !strings.HasSuffix(name, ".content") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(spool, ".quarantine", name))
		if err != nil {
			t.Errorf("read quarantined %s: %v", name, err)
			continue
		}
		m := tagRE.FindSubmatch(b)
		if m == nil {
			continue
		}
		tag := string(m[1])
		if acked[tag] == id {
			// docs/spool.md: a delivered message whose content was not
			// yet removed; it must have been delivered.
			ackedQuarantined++
			t.Logf("quarantined %s is acknowledged %s (delivered %d times)", name, tag, delivered[tag])
		}
	}
	for id := range reported {
		if !qids[id] {
			t.Errorf("mail log reports quarantine id=%s, but .quarantine holds no file of it", id)
		}
	}
	t.Logf("crash test: %d messages quarantined (%d files, %d of them acknowledged), %d quarantine lines",
		len(qids), len(qfiles), ackedQuarantined, len(reported))
	r.stop(15 * time.Second)
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
