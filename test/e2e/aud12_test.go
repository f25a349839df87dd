package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

var queuedAsRE = regexp.MustCompile(`queued as ([0-9A-F]{16})`)

// TestAud12QueueShowServed: a relay that forwards serves a message it has
// just accepted from its journal, without files, for a second or two
// (docs/spool.md). docs/queue.md says a command in another process naming
// such a message waits for its files before it reports it not found; the
// commands that change messages did, but "queue show ID", run with the id
// from the client's "250 ... queued as ID", said "no such message" and
// exited 1 at once, for a message the relay held and delivered later.
func TestAud12QueueShowServed(t *testing.T) {
	t.Parallel()
	// The upstream stalls at MAIL: the message stays in the relay, claimed.
	fake := harness.NewFakeSMTP(t, harness.Script{MaxStall: 20 * time.Second,
		Mail: harness.Response{Delay: 20 * time.Second}})
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect")
	_, final := opsSend(t, r.addr(), "client.test", "<alice@example.org>", []string{"<bob@example.net>"},
		"Subject: served\r\n\r\nbody\r\n")
	m := queuedAsRE.FindStringSubmatch(strings.Join(final, " "))
	if m == nil {
		t.Fatalf("final reply %q names no id", final)
	}
	out, errOut, code := opsCmd(t, "", "queue", "show", m[1], "--spool-dir", r.spool)
	if code != 0 || !strings.Contains(out, m[1]) {
		t.Errorf("queue show %s just after its 250, from another process: exit %d\n%s%s\nwant the message shown",
			m[1], code, out, errOut)
	}
}
