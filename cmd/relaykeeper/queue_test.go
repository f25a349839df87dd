package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/queue"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

var qt0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

const qContent = "Received: from client.example\r\nSubject: queue test\r\n\r\nbody line\r\n"

// queueSpool is a spool directory with one message in each state, arriving
// a second apart so that their ids sort in this order. The claimed message
// stays claimed, as by a running delivery, until the test ends.
type queueSpool struct {
	dir                               string
	s                                 *spool.Spool
	ready, due, failed, held, claimed string
	names                             *strings.Replacer // ids -> READY, DUE, ...
}

func newQueueSpool(t *testing.T) *queueSpool {
	t.Helper()
	dir := t.TempDir()
	s, err := spool.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := &queueSpool{dir: dir, s: s}
	q.ready = queueMessage(t, s, 0, "alice@example.com", []string{"bob@example.net", "carol@example.org"}, spool.Ready,
		func(e *spool.Envelope) {
			e.Attempts = 2
			e.NextAttempt = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
			e.LastReply = "451 4.3.0 Try again later"
			e.Recipients[0].Status, e.Recipients[0].Reply = spool.Sent, "250 2.0.0 Ok"
			e.Recipients[1].Status, e.Recipients[1].Reply = spool.Deferred, "451 4.3.0 Try again later"
		})
	q.due = queueMessage(t, s, 1, "dave@example.com", []string{"erin@example.net"}, spool.Ready, nil)
	q.failed = queueMessage(t, s, 2, "frank@example.com", []string{"nobody@example.net"}, spool.Failed,
		func(e *spool.Envelope) {
			e.Attempts = 1
			e.Recipients[0].Status, e.Recipients[0].Reply = spool.Bounced, "550 5.1.1 No such user"
		})
	q.held = queueMessage(t, s, 3, "", []string{"heidi@example.org"}, spool.Held, nil)
	q.claimed = queueMessage(t, s, 4, "ivan@example.com", []string{"judy@example.net"}, spool.Ready, nil)
	c, err := s.Claim(q.claimed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Unlock() })
	q.names = strings.NewReplacer(q.ready, "READY", q.due, "DUE", q.failed, "FAILED", q.held, "HELD", q.claimed, "CLAIMED")
	return q
}

func queueMessage(t *testing.T, s *spool.Spool, sec int, from string, to []string, st spool.State, edit func(*spool.Envelope)) string {
	t.Helper()
	arrival := qt0.Add(time.Duration(sec) * time.Second)
	w, err := s.Create(arrival)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, qContent)
	env := &spool.Envelope{From: from, Arrival: arrival, Client: "127.0.0.1:40000", Helo: "client.example"}
	for _, a := range to {
		env.Recipients = append(env.Recipients, spool.Recipient{Addr: a, Status: spool.Pending})
	}
	if err := w.Prepare(env); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	c, err := s.Lock(w.ID())
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(c.Env)
	}
	if err := c.Move(st); err != nil {
		t.Fatal(err)
	}
	return w.ID()
}

func (q *queueSpool) run(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	status := runQueue(append(args, "--spool-dir", q.dir), strings.NewReader(stdin), &out, &errb)
	return status, q.names.Replace(out.String()), q.names.Replace(errb.String())
}

func (q *queueSpool) state(t *testing.T, id string) string {
	t.Helper()
	_, st, err := q.s.Read(id)
	if err != nil {
		return "gone"
	}
	return st.String()
}

func TestQueueListText(t *testing.T) {
	q := newQueueSpool(t)
	var out, errb bytes.Buffer
	if status := runQueue([]string{"list", "--spool-dir", q.dir}, nil, &out, &errb); status != 0 || errb.Len() > 0 {
		t.Fatalf("queue list = %d, stderr %q", status, errb.String())
	}
	want := strings.NewReplacer("{READY}", q.ready, "{DUE}", q.due, "{FAILED}", q.failed, "{HELD}", q.held,
		"{CLAIMED}", q.claimed).Replace(`ID                    SIZE  ARRIVAL (UTC)        STATE    SENDER
{READY}        65  2026-11-22 10:00:00  ready    <alice@example.com>
    2 attempts; next attempt 2099-01-01 00:00:00; last reply: 451 4.3.0 Try again later
    sent      <bob@example.net>    250 2.0.0 Ok
    deferred  <carol@example.org>  451 4.3.0 Try again later

{DUE}        65  2026-11-22 10:00:01  ready    <dave@example.com>
    pending   <erin@example.net>

{FAILED}        65  2026-11-22 10:00:02  failed   <frank@example.com>
    1 attempt; failed; kept until retried or deleted
    failed    <nobody@example.net>  550 5.1.1 No such user

{HELD}        65  2026-11-22 10:00:03  held     <>
    held; not delivered until released
    pending   <heidi@example.org>

{CLAIMED}        65  2026-11-22 10:00:04  claimed  <ivan@example.com>
    being delivered now
    pending   <judy@example.net>

-- 1 Kbytes in 5 requests.
`)
	if d := cmp.Diff(want, out.String()); d != "" {
		t.Errorf("queue list (-want +got):\n%s", d)
	}
	// "queue" alone is "queue list".
	var alone bytes.Buffer
	runQueue([]string{"--spool-dir", q.dir}, nil, &alone, &errb)
	if alone.String() != out.String() {
		t.Errorf("queue alone printed\n%s\nwant the list", alone.String())
	}
}

func TestQueueListEmpty(t *testing.T) {
	var out, errb bytes.Buffer
	if status := runQueue([]string{"--spool-dir", t.TempDir()}, nil, &out, &errb); status != 0 || out.String() != "Mail queue is empty\n" {
		t.Errorf("queue list on an empty spool = %d, %q, %q", status, out.String(), errb.String())
	}
}

func TestQueueListJSON(t *testing.T) {
	q := newQueueSpool(t)
	var out, errb bytes.Buffer
	if status := runQueue([]string{"list", "--json", "--spool-dir", q.dir}, nil, &out, &errb); status != 0 {
		t.Fatalf("queue list --json = %d, %s", status, errb.String())
	}
	var got queue.Listing
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("queue list --json: %v\n%s", err, out.String())
	}
	msgs, err := queue.List(q.s, queue.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	want := queue.Listing{Spool: q.dir, Messages: msgs, Requests: 5, Bytes: 5 * int64(len(qContent))}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("queue list --json round trip (-want +got):\n%s", d)
	}
}

func TestQueueListFilters(t *testing.T) {
	q := newQueueSpool(t)
	tests := []struct {
		args []string
		want []string // names in the output, in order
	}{
		{[]string{"--sender", "ALICE"}, []string{"READY"}},
		{[]string{"--recipient", "example.org"}, []string{"READY", "HELD"}},
		{[]string{"--reply", "no such user"}, []string{"FAILED"}},
		{[]string{"--state", "held,failed"}, []string{"FAILED", "HELD"}},
		{[]string{"--state", "ready", "--recipient", "erin"}, []string{"DUE"}},
		{[]string{"--sender", "nobody sends this"}, nil},
	}
	for _, tt := range tests {
		status, out, _ := q.run(t, "", append([]string{"list", "--json"}, tt.args...)...)
		var l queue.Listing
		if err := json.Unmarshal([]byte(out), &l); status != 0 || err != nil {
			t.Fatalf("queue list %v = %d, %v", tt.args, status, err)
		}
		var got []string
		for _, m := range l.Messages {
			got = append(got, m.ID)
		}
		if !cmp.Equal(got, tt.want) || l.Requests != len(tt.want) {
			t.Errorf("queue list %v = %v (%d); want %v", tt.args, got, l.Requests, tt.want)
		}
	}
	if _, out, _ := q.run(t, "", "list", "--sender", "nobody sends this"); out != "-- 0 Kbytes in 0 requests.\n" {
		t.Errorf("queue list matching nothing = %q", out)
	}
}

func TestQueueShow(t *testing.T) {
	q := newQueueSpool(t)
	status, out, _ := q.run(t, "", "show", q.ready)
	if status != 0 {
		t.Fatalf("queue show = %d", status)
	}
	for _, want := range []string{
		"id:           READY\n", "state:        ready\n", "sender:       <alice@example.com>\n",
		"recipient:    deferred <carol@example.org> 451 4.3.0 Try again later\n",
		"last reply:   451 4.3.0 Try again later\n",
		"envelope:     " + filepath.Join(q.dir, "READY.envelope") + "\n",
		"\nReceived: from client.example\nSubject: queue test\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("queue show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "body line") {
		t.Errorf("queue show without --body shows the body:\n%s", out)
	}
	// Switches may follow the id.
	if _, out, _ := q.run(t, "", "show", q.ready, "--body"); !strings.HasSuffix(out, "Subject: queue test\n\nbody line\n") {
		t.Errorf("queue show --body:\n%s", out)
	}
	_, out, _ = q.run(t, "", "show", "--json", "--body", q.failed)
	var got queue.Shown
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if got.ID != "FAILED" || got.State != "failed" || got.Content == nil || *got.Content != qContent ||
		got.Header != "Received: from client.example\r\nSubject: queue test\r\n" {
		t.Errorf("queue show --json = %+v", got)
	}
	if status, _, errs := q.run(t, "", "show", "0000000000000000"); status != 1 || !strings.Contains(errs, "no such message") {
		t.Errorf("queue show unknown = %d, %q", status, errs)
	}
}

func TestQueueDelete(t *testing.T) {
	t.Run("ids", func(t *testing.T) {
		q := newQueueSpool(t)
		status, out, errs := q.run(t, "", "delete", q.due, q.held)
		want := "DUE: deleted (was ready)\nHELD: deleted (was held)\ndelete: 2 done.\nno relay is running on " + q.dir + ".\n"
		if status != 0 || out != want || errs != "" {
			t.Errorf("queue delete = %d, %q, %q; want 0, %q", status, out, errs, want)
		}
		if q.state(t, q.due) != "gone" || q.state(t, q.held) != "gone" || q.state(t, q.ready) != "ready" {
			t.Errorf("after delete: due %s, held %s, ready %s", q.state(t, q.due), q.state(t, q.held), q.state(t, q.ready))
		}
	})
	t.Run("stdin", func(t *testing.T) {
		q := newQueueSpool(t)
		// "-" reads ids, one per line; so does no id with a pipe for input.
		for _, args := range [][]string{{"delete", "-"}, {"delete"}} {
			q := newQueueSpool(t)
			status, out, _ := q.run(t, q.failed+"\n\n"+q.due+" extra words\n"+q.failed+"\n", args...)
			if status != 0 || q.state(t, q.failed) != "gone" || q.state(t, q.due) != "gone" || q.state(t, q.ready) != "ready" {
				t.Errorf("queue %v with ids on stdin = %d:\n%s", args, status, out)
			}
		}
		status, out, _ := q.run(t, "", "delete", "-")
		if status != 0 || out != "delete: 0 done.\n" {
			t.Errorf("queue delete - with nothing on stdin = %d, %q", status, out)
		}
	})
	t.Run("match", func(t *testing.T) {
		q := newQueueSpool(t)
		status, out, _ := q.run(t, "", "delete", "--match", "EXAMPLE.ORG")
		if status != 0 || q.state(t, q.ready) != "gone" || q.state(t, q.held) != "gone" || q.state(t, q.due) != "ready" {
			t.Errorf("queue delete --match = %d:\n%s", status, out)
		}
	})
	t.Run("all", func(t *testing.T) {
		q := newQueueSpool(t)
		status, out, errs := q.run(t, "", "delete", "--all")
		if status != 1 {
			t.Errorf("queue delete --all with a busy message = %d; want 1", status)
		}
		if !strings.Contains(out, "CLAIMED: busy: being delivered now; left alone\n") ||
			!strings.Contains(out, "delete: 4 done, 1 not done.\n") ||
			!strings.Contains(errs, "1 of 5 messages not done") {
			t.Errorf("queue delete --all:\n%s\nstderr: %s", out, errs)
		}
		for id, want := range map[string]string{q.ready: "gone", q.due: "gone", q.failed: "gone", q.held: "gone", q.claimed: "claimed"} {
			if got := q.state(t, id); got != want {
				t.Errorf("after delete --all: %s is %s; want %s", q.names.Replace(id), got, want)
			}
		}
	})
	t.Run("not found", func(t *testing.T) {
		q := newQueueSpool(t)
		status, out, _ := q.run(t, "", "delete", "0000000000000000", q.due)
		if status != 1 || !strings.Contains(out, "0000000000000000: not found: no such message\n") || q.state(t, q.due) != "gone" {
			t.Errorf("queue delete with an unknown id = %d:\n%s", status, out)
		}
	})
}

func TestQueueHoldRelease(t *testing.T) {
	q := newQueueSpool(t)
	status, out, _ := q.run(t, "", "hold", q.ready, q.claimed)
	if status != 1 || q.state(t, q.ready) != "held" || q.state(t, q.claimed) != "claimed" {
		t.Fatalf("queue hold = %d:\n%s", status, out)
	}
	if want := "READY: held (ready -> held)\nCLAIMED: busy: being delivered now; left alone\n"; !strings.HasPrefix(out, want) {
		t.Errorf("queue hold printed\n%s\nwant it to start with\n%s", out, want)
	}
	status, out, _ = q.run(t, "", "release", "--all")
	want := "READY: released, due now (held -> ready)\nHELD: released, due now (held -> ready)\n" +
		"release: 2 done.\nno relay is running on " + q.dir + "; the messages go when it starts.\n"
	if status != 0 || out != want {
		t.Errorf("queue release --all = %d, %q; want %q", status, out, want)
	}
	env, st, err := q.s.Read(q.ready)
	if err != nil || st != spool.Ready || !env.NextAttempt.IsZero() || env.Attempts != 2 {
		t.Errorf("released message: %v, next attempt %v, attempts %d, %v; want ready, due now, 2 attempts", st, env.NextAttempt, env.Attempts, err)
	}
}

func TestQueueRetryFailed(t *testing.T) {
	q := newQueueSpool(t)
	status, out, _ := q.run(t, "", "retry", q.failed)
	if status != 0 || !strings.HasPrefix(out, "FAILED: due now (failed -> ready)\nretry: 1 done.\n") {
		t.Errorf("queue retry = %d:\n%s", status, out)
	}
	env, st, err := q.s.Read(q.failed)
	if err != nil || st != spool.Ready || env.Recipients[0].Status != spool.Bounced {
		t.Errorf("retried message: %v, %+v, %v; want ready, recipient still failed (the relay retries it)", st, env.Recipients, err)
	}
	// A held message is released, not retried.
	if status, out, _ := q.run(t, "", "retry", q.held); status != 1 || !strings.Contains(out, "HELD: refused: held; release it first") {
		t.Errorf("queue retry of a held message = %d:\n%s", status, out)
	}
}

func TestQueueFlush(t *testing.T) {
	q := newQueueSpool(t)
	status, out, _ := q.run(t, "", "flush", "--json")
	var got queue.Changed
	if err := json.Unmarshal([]byte(out), &got); status != 0 || err != nil {
		t.Fatalf("queue flush --json = %d, %v:\n%s", status, err, out)
	}
	want := []queue.Result{
		{ID: "READY", Outcome: queue.Done, From: "ready", To: "ready", Detail: "due now"},
		{ID: "DUE", Outcome: queue.Unchanged, From: "ready", Detail: "already due"},
	}
	if d := cmp.Diff(want, got.Results); d != "" || got.Action != "flush" || got.Relay.Notified {
		t.Errorf("queue flush --json = %+v; results (-want +got):\n%s", got, d)
	}
}

func TestQueueUsage(t *testing.T) {
	q := newQueueSpool(t)
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"list", "--body"}, "queue list does not take --body"},
		{[]string{"list", "--state", "deferred"}, `--state "deferred": not a state`},
		{[]string{"list", "--nope"}, "unknown switch --nope"},
		{[]string{"list", "extra"}, `unexpected argument "extra"`},
		{[]string{"show"}, "queue show takes one message id"},
		{[]string{"delete", "../etc/passwd"}, `"../etc/passwd" is not a message id`},
		{[]string{"delete", "--all", q.due}, "not both"},
		{[]string{"delete", "--all", "--match", "x"}, "exclude each other"},
		{[]string{"flush", q.due}, "queue flush takes no arguments"},
		{[]string{"retry", "--sender", "x"}, "queue retry does not take --sender"},
	}
	for _, tt := range tests {
		status, out, errs := q.run(t, "", tt.args...)
		if status != 2 || out != "" || !strings.Contains(errs, tt.want) || !strings.Contains(errs, "(see relaykeeper queue --help)") {
			t.Errorf("queue %v = %d, %q, %q; want 2 and %q", tt.args, status, out, errs, tt.want)
		}
	}
	if q.state(t, q.due) != "ready" {
		t.Errorf("a usage error changed the spool")
	}
	var out, errb bytes.Buffer
	missing := filepath.Join(t.TempDir(), "nonexistent")
	if status := runQueue([]string{"--spool-dir", missing}, nil, &out, &errb); status != 2 || !strings.Contains(errb.String(), missing) {
		t.Errorf("queue on a missing spool = %d, %q", status, errb.String())
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("queue created the missing spool directory")
	}
	out.Reset()
	if status := runQueue([]string{"--help"}, nil, &out, &errb); status != 0 || !strings.Contains(out.String(), "usage: relaykeeper queue") {
		t.Errorf("queue --help = %d, %q", status, out.String())
	}
}

func TestQueueConfig(t *testing.T) {
	q := newQueueSpool(t)
	cfg := filepath.Join(t.TempDir(), "relaykeeper.toml")
	os.WriteFile(cfg, []byte("[spool]\ndir = \""+q.dir+"\"\n"), 0o644)
	var out, errb bytes.Buffer
	if status := runQueue([]string{"list", "--config", cfg}, nil, &out, &errb); status != 0 || !strings.Contains(out.String(), "in 5 requests") {
		t.Errorf("queue list --config = %d, %q, %q", status, out.String(), errb.String())
	}
}

// TestQueueNotifiesRelay runs a stand-in for the relay that records each
// SIGHUP, names it in the spool's pid file, and checks that a change
// reaches it and that the output says so.
func TestQueueNotifiesRelay(t *testing.T) {
	q := newQueueSpool(t)
	hups := filepath.Join(t.TempDir(), "hups")
	ready := filepath.Join(t.TempDir(), "ready")
	relay := exec.Command("sh", "-c", `trap 'echo HUP >> "$1"' HUP; : > "$2"; while :; do sleep 0.1; done`, "sh", hups, ready)
	if err := relay.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		relay.Process.Kill()
		relay.Wait()
	}()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if _, err := os.Stat(ready); err == nil {
			break // the trap is set
		}
		if time.Now().After(deadline) {
			t.Fatal("the stand-in relay did not start")
		}
	}
	pid := relay.Process.Pid
	os.WriteFile(filepath.Join(q.dir, queue.PIDFile), []byte(strconv.Itoa(pid)+"\n"), 0o644)

	status, out, _ := q.run(t, "", "retry", q.failed)
	if want := "relay (pid " + strconv.Itoa(pid) + ") notified: it re-reads the spool now.\n"; status != 0 || !strings.HasSuffix(out, want) {
		t.Errorf("queue retry with a relay = %d:\n%s\nwant it to end with %q", status, out, want)
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		b, _ := os.ReadFile(hups)
		if string(b) == "HUP\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the relay got %q; want one HUP", b)
		}
	}

	// Nothing changed, nothing to tell.
	status, out, _ = q.run(t, "", "hold", q.held)
	if status != 0 || strings.Contains(out, "relay") {
		t.Errorf("queue hold of a held message = %d:\n%s\nwant no notification", status, out)
	}

	// The relay has gone: the pid file is stale.
	relay.Process.Kill()
	relay.Wait()
	status, out, _ = q.run(t, "", "flush")
	if want := "no relay is running on " + q.dir + "; the messages go when it starts.\n"; status != 0 || !strings.HasSuffix(out, want) {
		t.Errorf("queue flush after the relay died = %d:\n%s", status, out)
	}
}

// TestDur18QueueShortSpoolSwitch: "queue --help" lists "-s, --spool-dir
// DIR" for every command, as the daemon takes -s; "queue list -s DIR"
// was refused with "unknown switch -s".
func TestDur18QueueShortSpoolSwitch(t *testing.T) {
	q := newQueueSpool(t)
	for _, args := range [][]string{{"list", "-s", q.dir}, {"-s", q.dir, "flush"}, {"quarantine", "-s=" + q.dir}} {
		var out, errb strings.Builder
		if status := runQueue(args, nil, &out, &errb); status != 0 || errb.Len() > 0 {
			t.Errorf("queue %q: status %d, %q; want 0 and no error", args, status, errb.String())
		}
	}
}
