package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// opsListing is the JSON of "relaykeeper queue list --json".
type opsListing struct {
	Spool    string       `json:"spool"`
	Requests int          `json:"requests"`
	Bytes    int64        `json:"bytes"`
	Messages []opsMessage `json:"messages"`
}

type opsMessage struct {
	ID          string    `json:"id"`
	State       string    `json:"state"`
	Size        int64     `json:"size"`
	Arrival     time.Time `json:"arrival"`
	Sender      string    `json:"sender"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	LastReply   string    `json:"last_reply"`
	Client      string    `json:"client"`
	Helo        string    `json:"helo"`
	Recipients  []struct {
		Addr   string `json:"addr"`
		Status string `json:"status"`
		Reply  string `json:"reply"`
	} `json:"recipients"`
}

func opsList(t *testing.T, spool string) opsListing {
	t.Helper()
	out, errOut, code := opsCmd(t, "", "queue", "list", "--json", "--spool-dir", spool)
	var l opsListing
	if code != 0 || json.Unmarshal([]byte(out), &l) != nil {
		t.Fatalf("queue list --json: exit %d, %q %q", code, out, errOut)
	}
	return l
}

// TestOpsQueueCommands runs every queue command against a running relay
// whose upstream first defers everything (back-off 30s, so nothing is
// retried by itself during the test) and refuses one recipient for good:
// list (text and JSON) and show describe the spool exactly; hold keeps a
// message back even when the upstream would take it; delete removes
// messages given by id, on the standard input and by --match; flush makes
// the deferred message go at once, release the held one, retry the failed
// one once the upstream is fixed. Each change signals the relay (its log
// says SIGHUP each time) and the upstream gets exactly the messages let go.
func TestOpsQueueCommands(t *testing.T) {
	t.Parallel()
	const later, refused = "451 4.3.0 try later", "550 5.1.1 <fail@example.net>: no such user"
	failing := map[string]harness.Response{"fail@example.net": {Reply: refused}}
	fake := harness.NewFakeSMTP(t, harness.Script{Rcpt: harness.Response{Reply: later}, RcptFor: failing})
	r := opsRelay(t, fake.Addr(), "[delivery]\nminimal_backoff_time = \"30s\"\nmaximal_backoff_time = \"30s\"\n",
		"--forward-on-disconnect", "--no-bounces")
	pid := r.current().PID()
	spool := r.spool

	names := []string{"hold", "del-id", "del-stdin", "match-me", "flush", "fail"}
	ids := map[string]string{}
	for _, n := range names {
		tx := mustSend(t, r.addr(), "alice@example.org", []string{n + "@example.net"}, message("queue "+n))
		ids[n] = queuedID(t, tx.Final)
	}
	// Every message tried once: five deferred, one failed.
	var l opsListing
	settled := waitFor(10*time.Second, func() bool {
		l = opsList(t, spool)
		ready, failed := 0, 0
		for _, m := range l.Messages {
			switch {
			case m.State == "ready" && m.Attempts == 1 && m.Recipients[0].Status == "deferred":
				ready++
			case m.State == "failed" && m.Attempts == 1:
				failed++
			}
		}
		return ready == 5 && failed == 1
	})
	if !settled {
		t.Fatalf("queue after the first attempts: %+v; want 5 deferred, 1 failed", l)
	}

	// list --json.
	if l.Spool != spool || l.Requests != 6 || len(l.Messages) != 6 {
		t.Fatalf("list --json: spool %q, %d requests, %d messages; want %s, 6, 6", l.Spool, l.Requests, len(l.Messages), spool)
	}
	// Listed in id order: the arrival second, then random digits.
	nameOf := map[string]string{}
	for n, id := range ids {
		nameOf[id] = n
	}
	if !slices.IsSortedFunc(l.Messages, func(a, b opsMessage) int { return strings.Compare(a.ID, b.ID) }) {
		t.Errorf("list --json: messages not in id order")
	}
	var total int64
	for i, m := range l.Messages {
		n := nameOf[m.ID]
		wantState, wantStatus, wantReply := "ready", "deferred", later
		if n == "fail" {
			wantState, wantStatus, wantReply = "failed", "failed", refused
		}
		if m.ID != ids[n] || m.State != wantState || m.Sender != "alice@example.org" || m.Attempts != 1 ||
			m.LastReply != wantReply || m.Helo != "client.e2e.test" || !strings.HasPrefix(m.Client, "127.0.0.1:") ||
			len(m.Recipients) != 1 || m.Recipients[0].Addr != n+"@example.net" ||
			m.Recipients[0].Status != wantStatus || m.Recipients[0].Reply != wantReply {
			t.Errorf("list --json message %d: %+v; want %s %s, %s <%s@example.net> %q", i, m, ids[n], wantState, wantStatus, n, wantReply)
		}
		if wantState == "ready" && m.NextAttempt.Before(time.Now().Add(20*time.Second)) {
			t.Errorf("%s next attempt %v; want about 30s after its attempt", m.ID, m.NextAttempt)
		}
		total += m.Size
	}
	if l.Bytes != total {
		t.Errorf("list --json bytes %d; want the sum of the sizes, %d", l.Bytes, total)
	}

	// list, for people: exactly the documented layout.
	out, _, code := opsCmd(t, "", "queue", "--spool-dir", spool)
	var want strings.Builder
	fmt.Fprintf(&want, "%-16s  %8s  %-19s  %-7s  %s\n", "ID", "SIZE", "ARRIVAL (UTC)", "STATE", "SENDER")
	for i, m := range l.Messages {
		if i > 0 {
			want.WriteString("\n")
		}
		fmt.Fprintf(&want, "%-16s  %8d  %-19s  %-7s  <alice@example.org>\n", m.ID, m.Size, m.Arrival.UTC().Format("2006-01-02 15:04:05"), m.State)
		if m.State == "failed" {
			fmt.Fprintf(&want, "    1 attempt; failed; kept until retried or deleted; last reply: %s\n", refused)
			fmt.Fprintf(&want, "    failed    <%s>  %s\n", m.Recipients[0].Addr, refused)
		} else {
			fmt.Fprintf(&want, "    1 attempt; next attempt %s; last reply: %s\n", m.NextAttempt.UTC().Format("2006-01-02 15:04:05"), later)
			fmt.Fprintf(&want, "    deferred  <%s>  %s\n", m.Recipients[0].Addr, later)
		}
	}
	fmt.Fprintf(&want, "\n-- %d Kbytes in 6 requests.\n", (total+1023)/1024)
	if code != 0 || out != want.String() {
		t.Errorf("queue list: exit %d\n%s\nwant exit 0\n%s", code, out, want.String())
	}

	// show.
	var m0 opsMessage
	for _, m := range l.Messages {
		if m.ID == ids["hold"] {
			m0 = m
		}
	}
	out, _, code = opsCmd(t, "", "queue", "show", ids["hold"], "--spool-dir", spool)
	head, hdr, _ := strings.Cut(out, "\n\n")
	wantHead := strings.Join([]string{
		"id:           " + ids["hold"],
		"state:        ready",
		fmt.Sprintf("size:         %d bytes", m0.Size),
		"arrival:      " + m0.Arrival.UTC().Format("2006-01-02 15:04:05") + " UTC",
		"sender:       <alice@example.org>",
		"client:       " + m0.Client,
		"helo:         client.e2e.test",
		"attempts:     1",
		"next attempt: " + m0.NextAttempt.UTC().Format("2006-01-02 15:04:05") + " UTC",
		"last reply:   " + later,
		"recipient:    deferred <hold@example.net> " + later,
		"envelope:     " + spool + "/" + ids["hold"] + ".envelope",
		"content:      " + spool + "/" + ids["hold"] + ".content",
	}, "\n")
	if code != 0 || head != wantHead {
		t.Errorf("queue show: exit %d\n%s\nwant\n%s", code, head, wantHead)
	}
	if !strings.HasPrefix(hdr, "Received: from client.e2e.test (unknown [127.0.0.1])\n\tby relay.test (relaykeeper) with ESMTP id "+ids["hold"]) ||
		// The Date the relay added on intake ends the header section.
		!regexp.MustCompile(`Message-ID: <queue-hold@e2e\.test>\nDate: [^\n]+\n$`).MatchString(hdr) || strings.Contains(hdr, "Body of") || strings.Contains(hdr, "\r") {
		t.Errorf("queue show: header section\n%s\nwant relaykeeper's Received header first, the header only, LF line ends", hdr)
	}

	// The upstream is fixed, except for fail@: nothing goes before it is
	// due or let go.
	fake.SetScript(harness.Script{RcptFor: failing})
	hups := 0
	change := func(stdin string, args []string, wantOut string) {
		t.Helper()
		out, errOut, code := opsCmd(t, stdin, append(append([]string{"queue"}, args...), "--spool-dir", spool)...)
		if slices.Contains(args, "--json") {
			var b bytes.Buffer
			if err := json.Compact(&b, []byte(out)); err == nil {
				out = b.String() + "\n"
			}
		}
		if code != 0 || out != wantOut {
			t.Errorf("queue %s: exit %d\n%s%s\nwant exit 0\n%s", strings.Join(args, " "), code, out, errOut, wantOut)
		}
		hups++
		if !waitFor(5*time.Second, func() bool { return sighups(r) >= hups }) || sighups(r) != hups {
			t.Errorf("after queue %s: the relay logged SIGHUP %d times; want %d", strings.Join(args, " "), sighups(r), hups)
		}
	}
	notified := fmt.Sprintf("relay (pid %d) notified: it re-reads the spool now.\n", pid)

	change("", []string{"hold", ids["hold"]}, ids["hold"]+": held (ready -> held)\nhold: 1 done.\n"+notified)
	change("", []string{"delete", ids["del-id"]}, ids["del-id"]+": deleted (was ready)\ndelete: 1 done.\n"+notified)
	change(ids["del-stdin"]+" the first word counts\n\n"+ids["del-stdin"]+"\n", []string{"delete", "-"},
		ids["del-stdin"]+": deleted (was ready)\ndelete: 1 done.\n"+notified)
	change("", []string{"delete", "--match", "MATCH-me", "--json"},
		fmt.Sprintf(`{"action":"delete","spool":%q,"results":[{"id":%q,"outcome":"done","from":"ready","detail":"deleted"}],"relay":{"notified":true,"pid":%d}}`+"\n",
			spool, ids["match-me"], pid))
	files := opsSpool(t, spool)
	wantFiles := map[string][]string{
		ids["hold"]:  {"content", "envelope.held"},
		ids["flush"]: {"content", "envelope"},
		ids["fail"]:  {"content", "envelope.bad"},
	}
	if fmt.Sprint(files) != fmt.Sprint(wantFiles) {
		t.Errorf("spool after hold and deletes: %v; want %v", files, wantFiles)
	}
	if n := len(acceptedTx(fake)); n != 0 {
		t.Fatalf("upstream accepted %d messages before anything was due; want 0", n)
	}

	// flush: the deferred message goes now, not in 30s; the held one
	// stays.
	flushed := time.Now()
	change("", []string{"flush"}, ids["flush"]+": due now\nflush: 1 done.\n"+notified)
	if !waitFor(5*time.Second, func() bool { return len(acceptedTx(fake)) >= 1 }) {
		t.Fatalf("flushed message not delivered within 5s (its back-off is 30s)")
	}
	t.Logf("flushed message delivered %v after flush", time.Since(flushed).Round(time.Millisecond))
	time.Sleep(1500 * time.Millisecond)
	if got := acceptedSubjects(fake); !slices.Equal(got, []string{"queue flush"}) {
		t.Errorf("upstream accepted %q after flush; want only the flushed message (not the held one)", got)
	}
	if f := opsSpool(t, spool)[ids["hold"]]; !slices.Equal(f, []string{"content", "envelope.held"}) {
		t.Errorf("held message's files %q; want content, envelope.held", f)
	}

	change("", []string{"release", ids["hold"]}, ids["hold"]+": released, due now (held -> ready)\nrelease: 1 done.\n"+notified)
	if !waitFor(5*time.Second, func() bool { return len(acceptedTx(fake)) >= 2 }) {
		t.Fatalf("released message not delivered within 5s")
	}

	// retry: the failed message, once its recipient is accepted.
	fake.SetScript(harness.Script{})
	change("", []string{"retry", ids["fail"]}, ids["fail"]+": due now (failed -> ready)\nretry: 1 done.\n"+notified)
	if !waitFor(5*time.Second, func() bool { return len(acceptedTx(fake)) >= 3 }) {
		t.Fatalf("retried message not delivered within 5s")
	}
	waitOpsSpool(t, spool, 5*time.Second, "empty", func(f map[string][]string) bool { return len(f) == 0 })
	if got := acceptedSubjects(fake); !slices.Equal(got, []string{"queue flush", "queue hold", "queue fail"}) {
		t.Errorf("upstream accepted %q; want the flushed, the released and the retried message, once each", got)
	}
	for _, tx := range acceptedTx(fake) {
		if subjectOf(string(tx.Data)) == "queue fail" && !slices.Equal(tx.To(), []string{"fail@example.net"}) {
			t.Errorf("retried message went to %q; want [fail@example.net]", tx.To())
		}
	}
	out, _, code = opsCmd(t, "", "queue", "list", "--spool-dir", spool)
	if code != 0 || out != "Mail queue is empty\n" {
		t.Errorf("queue list at the end: exit %d %q; want \"Mail queue is empty\"", code, out)
	}
	if n := sighups(r); n != 7 {
		t.Errorf("relay logged SIGHUP %d times; want 7 (one per change)", n)
	}
}

// acceptedSubjects lists the Subjects of the messages the upstream accepted.
func acceptedSubjects(f *harness.FakeSMTP) []string {
	var s []string
	for _, tx := range acceptedTx(f) {
		s = append(s, subjectOf(string(tx.Data)))
	}
	return s
}

// TestOpsQueueTwoRelaysOneSpool: a second relay started on a spool and
// stopped again leaves the first one known to the queue commands, which
// still notify it: a stopped relay takes only itself out of the pid file.
func TestOpsQueueTwoRelaysOneSpool(t *testing.T) {
	t.Parallel()
	spool := t.TempDir()
	first := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool)
	second := startRelay(t, "127.0.0.1", "--as-server", "--interface", "127.0.0.1", "--spool-dir", spool)
	second.stop(15 * time.Second)

	out, errOut, code := opsCmd(t, "", "queue", "flush", "--spool-dir", spool)
	want := fmt.Sprintf("relay (pid %d) notified", first.current().PID())
	if code != 0 || !strings.Contains(out, want) {
		t.Errorf("queue flush after the second relay stopped: exit %d\n%s%s\nwant %q", code, out, errOut, want)
	}
	if !waitFor(5*time.Second, func() bool { return sighups(first) >= 1 }) {
		t.Errorf("the first relay got no SIGHUP from queue flush")
	}
}
