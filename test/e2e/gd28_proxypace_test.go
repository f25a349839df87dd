package e2e

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestGd28ProxySchedulerKeepsPause: Gmail says "421 4.7.0 Try again
// later" to a proxy's session; the proxy refuses its clients until the
// pause ends, but its scheduler, which carries the relay's own mail
// (bounce reports, encapsulations), opened sessions to Gmail at once.
// Mail queued in the proxy's spool now waits for the same pause, and goes
// when it ends.
func TestGd28ProxySchedulerKeepsPause(t *testing.T) {
	t.Parallel()
	later := foldReply("421", "4.7.0", "Try again later, closing connection.", 60)
	var refusing atomic.Bool
	refusing.Store(true)
	gmail := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.google.test",
		Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			if stage != harness.StageConnect || !refusing.Load() {
				return harness.Response{}
			}
			return harness.Response{Reply: strings.ReplaceAll(later, "{id}", "gd28"), Fault: harness.Close421}
		}})
	r := startEnforcer(t, gmail.Addr(), enforceOpts{proxy: true,
		config: "[enforce]\nban_delay = \"0s\"\n[delivery]\npace_suspend = \"6s\"\n"})
	start := time.Now()
	tx, err := sendFrom(r.addr(), "127.28.1.10", "a@pace.example", []string{"p@gmail.test"}, gmailMessage("a@pace.example", "gd28 paced"))
	if err != nil && err != errRefused {
		t.Logf("client: %v", err)
	}
	if h := heardReply(tx).String(); !strings.HasPrefix(h, "4") {
		t.Fatalf("the client heard %q; want Gmail's temporary refusal", h)
	}
	refusing.Store(false) // Gmail would take mail now: only the pause holds the relay back
	before := gmail.Connections()

	// The relay's own mail, queued while paused: as a report or an
	// encapsulation would be; queue flush tells the running relay.
	out, errOut, code := runBinary(t, harness.Binary(t), "Subject: report\r\n\r\nfrom the relay\r\n",
		"submit", "--spool-dir", r.spool, "--from", "postmaster@relay.test", "notice@gmail.test")
	if code != 0 {
		t.Fatalf("submit: exit %d: %s%s", code, out, errOut)
	}
	if _, errOut, code := runBinary(t, harness.Binary(t), "", "queue", "flush", "--spool-dir", r.spool); code != 0 {
		t.Fatalf("queue flush: exit %d: %s", code, errOut)
	}
	time.Sleep(time.Until(start.Add(3 * time.Second)))
	if n := gmail.Connections() - before; n != 0 {
		t.Errorf("Gmail said %q and the proxy's scheduler opened %d sessions to it within the pause; want none", firstLine(later), n)
	}
	// After the pause the queued mail goes.
	got := gmail.WaitTransactions(t, 1, 30*time.Second)
	if d := time.Since(start); d < 5*time.Second {
		t.Errorf("the queued mail went %v after the pause began; want after pace_suspend (6s)", d.Round(time.Millisecond))
	}
	if len(got) != 1 || fmt.Sprint(got[0].Rcpts) == "" {
		t.Errorf("Gmail got %+v; want the queued message", got)
	}
}
