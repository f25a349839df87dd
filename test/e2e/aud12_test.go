package e2e

import (
	"regexp"
	"slices"
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

// TestAud12DeadRelaysJournalOnSharedSpool: relays may share a spool
// (docs/queue.md). A relay killed there left the messages it served from
// memory, acknowledged with 250, in its journal, and those it was
// delivering as .busy files nobody settles: the relay still running
// replayed neither until some relay started again. It listed "Mail queue
// is empty" and delivered none of them, for as long as it ran. A running
// relay now replays the journal of one that died, and settles its files,
// within seconds.
func TestAud12DeadRelaysJournalOnSharedSpool(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	// The first relay's upstream stalls at MAIL: its messages stay in it,
	// claimed, served from memory, then written out as .busy files.
	stalled := harness.NewFakeSMTP(t, harness.Script{MaxStall: 30 * time.Second,
		Mail: harness.Response{Delay: 30 * time.Second}})
	sink := harness.NewFakeSMTP(t, harness.Script{})
	first := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", stalled.Addr(), "--forward-on-disconnect",
		"--interface", "127.0.0.1", "--spool-dir", spool)
	second := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect",
		"--poll", "1", "--interface", "127.0.0.1", "--spool-dir", spool)
	send := func(subject string) {
		opsSend(t, first.addr(), "client.test", "<alice@example.org>", []string{"<bob@example.net>"},
			"Subject: "+subject+"\r\n\r\nbody\r\n")
	}
	send("written-out")
	if !waitFor(10*time.Second, func() bool { return len(spoolFiles(t, spool)) > 0 }) {
		t.Fatal("the first message was never written out as files")
	}
	send("journal-only")
	first.kill()
	want := []string{"journal-only", "written-out"}
	var got []string
	waitFor(20*time.Second, func() bool {
		got = acceptedSubjects(sink)
		slices.Sort(got)
		return slices.Equal(got, want)
	})
	if !slices.Equal(got, want) {
		t.Errorf("the relay still running delivered %q of the messages the killed one acknowledged; want %q\nspool: %v",
			got, want, spoolFiles(t, spool))
	}
	second.stop(15 * time.Second)
}
