package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestReviewDurAdminForwardWithoutPoll: E-MailRelay's admin "forward"
// is itself a forwarding trigger ("--as-server --forward-to HOST --admin
// PORT", then "forward" whenever wanted): it must forward the stored mail,
// not answer that no forwarding is configured. Nothing goes before it is
// asked for, and "unfail-all" alone forwards nothing.
func TestReviewDurAdminForwardWithoutPoll(t *testing.T) {
	t.Parallel()
	sink := harness.NewFakeSMTP(t, harness.Script{})
	r, adminPort := adminRelay(t, sink.Addr())
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("forward me"))
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", adminPort))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(c)
	ask := func(cmd string) string {
		fmt.Fprintf(c, "%s\r\n", cmd)
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("%s: %v", cmd, err)
		}
		return strings.TrimSpace(strings.TrimPrefix(line, "E-MailRelay> "))
	}
	ask("unfail-all")
	time.Sleep(500 * time.Millisecond)
	if n := len(sink.Transactions()); n != 0 {
		t.Fatalf("forwarded before \"forward\": %d transactions", n)
	}
	if got := ask("forward"); got != "OK" {
		t.Fatalf("forward answered %q; want OK", got)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(sink.Transactions()) == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := len(sink.Transactions()); n != 1 {
		t.Errorf("after \"forward\" the smarthost saw %d transactions; want 1", n)
	}
}

// TestReviewDurFullDiskKill: the relay forwards, the upstream is down, and
// clients fill the spool's disk with messages that the journal serves. A
// kill -9 then, and a start with the upstream back: every message that
// heard 250 must reach it. (The journal used to take the disk's last bytes
// for its records, so the replay could write none of them out: it kept
// the segment, the disk stayed full of it, and nothing was delivered.)
func TestReviewDurFullDiskKill(t *testing.T) {
	t.Parallel()
	img, mnt := loopDisk(t)
	upstream := fmt.Sprintf("127.0.0.1:%d", harness.FreePort(t))
	r := startRelayOnLoop(t, img, mnt, "--as-server", "--interface", "127.0.0.1", "--size", "0",
		"--spool-dir", filepath.Join(mnt, "spool"), "--forward-to", upstream, "--poll", "1")
	view := fmt.Sprintf("/proc/%d/root", r.current().PID())
	fillLeaving(t, view+filepath.Join(mnt, "filler"), 3<<20)

	acked := map[string]bool{}
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	refused := 0
	for i := 0; i < 60 && refused < 3; i++ {
		subject := fmt.Sprintf("full disk kill %d", i)
		_, err := c.send("alice@example.org", []string{"bob@example.net"}, "Subject: "+subject+"\n\n"+strings.Repeat("k", 100<<10)+"\n")
		switch {
		case err == nil:
			acked[subject] = true
		case errors.Is(err, errRefused):
			refused++
		default:
			t.Fatalf("message %d: %v", i, err)
		}
	}
	c.Close()
	if len(acked) == 0 || refused == 0 {
		t.Fatalf("%d messages acknowledged, %d refused; want the disk to fill part way", len(acked), refused)
	}
	r.kill()
	sink := harness.StartSink(t, harness.SinkOptions{Addr: upstream})
	r.restart()
	got := map[string]bool{}
	waitFor(60*time.Second, func() bool {
		for _, m := range sink.Messages() {
			got[subjectOf(m.Data)] = true
		}
		return len(got) >= len(acked)
	})
	for s := range acked {
		if !got[s] {
			t.Errorf("%q was acknowledged before the kill and never reached the upstream", s)
		}
	}
}
