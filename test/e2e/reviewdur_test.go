package e2e

import (
	"bufio"
	"fmt"
	"net"
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
	adminPort := harness.FreePort(t)
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--admin", fmt.Sprint(adminPort),
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	harness.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", adminPort), 5*time.Second)
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
