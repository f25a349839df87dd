package queue

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

const content = "Received: from client.example\r\nSubject: test\r\nFrom: a@example.com\r\n\r\nbody line\r\n"

// testSpool is a spool with one message in every state. The claimed and
// new messages stay locked until the test ends, as a forwarder and a
// receipt in progress would keep them.
type testSpool struct {
	s                                 *spool.Spool
	ready, due, claimed, failed, held string
	newID                             string
	byState                           map[string]string
}

func newTestSpool(t *testing.T) *testSpool {
	t.Helper()
	s, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testSpool{s: s}
	// ready: deferred once, next attempt later.
	ts.ready = addMessage(t, s, "alice@example.com", []string{"bob@example.net", "carol@example.org"}, false,
		func(e *spool.Envelope) {
			e.Attempts = 1
			e.NextAttempt = t0.Add(5 * time.Minute)
			e.LastReply = "451 4.3.0 Try again later"
			e.Recipients[0].Status, e.Recipients[0].Reply = spool.Sent, "250 2.0.0 Ok"
			e.Recipients[1].Status, e.Recipients[1].Reply = spool.Deferred, "451 4.3.0 Try again later"
		}, spool.Ready)
	// due: ready, never tried.
	ts.due = addMessage(t, s, "dave@example.com", []string{"erin@example.net"}, false, nil, spool.Ready)
	// failed: refused for good.
	ts.failed = addMessage(t, s, "frank@example.com", []string{"nobody@example.net"}, false,
		func(e *spool.Envelope) {
			e.Attempts = 1
			e.Recipients[0].Status, e.Recipients[0].Reply = spool.Bounced, "550 5.1.1 No such user"
		}, spool.Failed)
	// held: committed on hold.
	ts.held = addMessage(t, s, "grace@example.com", []string{"heidi@example.org"}, true,
		func(e *spool.Envelope) { e.NextAttempt = t0.Add(time.Hour) }, spool.Held)
	// claimed: a forwarder has it now.
	ts.claimed = addMessage(t, s, "ivan@example.com", []string{"judy@example.net"}, false, nil, spool.Ready)
	c, err := s.Claim(ts.claimed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Unlock() })
	// new: a receipt in progress.
	w, err := s.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, content)
	if err := w.Prepare(&spool.Envelope{From: "mallory@example.com", Arrival: t0,
		Recipients: []spool.Recipient{{Addr: "oscar@example.net", Status: spool.Pending}}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(w.Abort)
	ts.newID = w.ID()
	ts.byState = map[string]string{"ready": ts.ready, "due": ts.due, "failed": ts.failed,
		"held": ts.held, "claimed": ts.claimed, "new": ts.newID}
	return ts
}

// addMessage commits a message through the spool's API, lets edit change
// its envelope under a lock, and moves it to state st.
func addMessage(t *testing.T, s *spool.Spool, from string, to []string, hold bool, edit func(*spool.Envelope), st spool.State) string {
	t.Helper()
	w, err := s.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, content)
	env := &spool.Envelope{From: from, Arrival: t0, Client: "127.0.0.1:40000", Helo: "client.example"}
	for _, a := range to {
		env.Recipients = append(env.Recipients, spool.Recipient{Addr: a, Status: spool.Pending})
	}
	if err := w.Prepare(env); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(hold); err != nil {
		t.Fatal(err)
	}
	if edit == nil && (st == spool.Ready || st == spool.Held) {
		return w.ID()
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

func ids(msgs []Message) []string {
	var out []string
	for _, m := range msgs {
		out = append(out, m.ID)
	}
	return out
}

func TestList(t *testing.T) {
	ts := newTestSpool(t)
	all := []string{ts.ready, ts.due, ts.failed, ts.held, ts.claimed, ts.newID}
	tests := []struct {
		name string
		f    Filter
		want []string
	}{
		{"all", Filter{}, all},
		{"sender", Filter{Sender: "ALICE@"}, []string{ts.ready}},
		{"recipient", Filter{Recipient: "example.net"}, []string{ts.ready, ts.due, ts.failed, ts.claimed, ts.newID}},
		{"reply", Filter{Reply: "no such user"}, []string{ts.failed}},
		{"last reply", Filter{Reply: "try again"}, []string{ts.ready}},
		{"state", Filter{States: []spool.State{spool.Held, spool.Failed}}, []string{ts.failed, ts.held}},
		{"state and sender", Filter{States: []spool.State{spool.Ready}, Sender: "grace"}, nil},
		{"none", Filter{Sender: "nobody-sends-this"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, err := List(ts.s, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			want := append([]string(nil), tt.want...)
			// Ids sort by arrival second, then randomly: compare as sets.
			if d := cmp.Diff(want, ids(msgs), cmpopts.SortSlices(func(a, b string) bool { return a < b }), cmpopts.EquateEmpty()); d != "" {
				t.Errorf("List(%+v) ids (-want +got):\n%s", tt.f, d)
			}
		})
	}
}

func TestGet(t *testing.T) {
	ts := newTestSpool(t)
	got, err := Get(ts.s, ts.ready)
	if err != nil {
		t.Fatal(err)
	}
	want := Message{
		ID: ts.ready, State: "ready", Size: int64(len(content)), Arrival: t0,
		Sender: "alice@example.com",
		Recipients: []Recipient{
			{Addr: "bob@example.net", Status: "sent", Reply: "250 2.0.0 Ok"},
			{Addr: "carol@example.org", Status: "deferred", Reply: "451 4.3.0 Try again later"},
		},
		Attempts: 1, NextAttempt: t0.Add(5 * time.Minute), LastReply: "451 4.3.0 Try again later",
		Client: "127.0.0.1:40000", Helo: "client.example",
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Get(ready) (-want +got):\n%s", d)
	}
	for _, id := range []string{"0000000000000000", "../etc/passwd"} {
		if _, err := Get(ts.s, id); !errors.Is(err, spool.ErrNotFound) {
			t.Errorf("Get(%q) = %v; want ErrNotFound", id, err)
		}
	}
}

func TestListTornEnvelope(t *testing.T) {
	ts := newTestSpool(t)
	path := ts.s.EnvelopePath(ts.due, spool.Ready)
	full, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, full[:len(full)/3], 0o640)
	msgs, err := List(ts.s, Filter{States: []spool.State{spool.Ready}})
	if err != nil {
		t.Fatal(err)
	}
	var torn *Message
	for i := range msgs {
		if msgs[i].ID == ts.due {
			torn = &msgs[i]
		}
	}
	if torn == nil || torn.Error == "" || torn.State != "ready" || torn.Size != int64(len(content)) {
		t.Errorf("torn envelope listed as %+v; want state ready, size and an error", torn)
	}
	if r := Apply(ts.s, Hold, []string{ts.due}); r[0].Outcome != Failed {
		t.Errorf("Hold(torn) = %+v; want error", r[0])
	}
	// Delete needs nothing from the envelope, as postsuper -d removes a
	// damaged queue file: the administrator need not wait for a restart's
	// quarantine, nor remove files by hand.
	if r := Apply(ts.s, Delete, []string{ts.due}); r[0].Outcome != Done || r[0].From != "ready" {
		t.Errorf("Delete(torn) = %+v; want done, was ready", r[0])
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("the torn envelope is still there after Delete (%v)", err)
	}
}

func TestHeader(t *testing.T) {
	ts := newTestSpool(t)
	h, err := Header(ts.s, ts.ready)
	if err != nil {
		t.Fatal(err)
	}
	if want := "Received: from client.example\r\nSubject: test\r\nFrom: a@example.com\r\n"; string(h) != want {
		t.Errorf("Header = %q; want %q", h, want)
	}
	if _, err := Header(ts.s, "0000000000000000"); !errors.Is(err, spool.ErrNotFound) {
		t.Errorf("Header(unknown) = %v; want ErrNotFound", err)
	}
}

func TestApply(t *testing.T) {
	type want struct {
		outcome Outcome
		state   string // state afterwards; "" when gone
		next    bool   // Next-Attempt still set
	}
	tests := []struct {
		act  Action
		msg  string // key in testSpool.byState
		want want
	}{
		{Delete, "ready", want{Done, "", false}},
		{Delete, "failed", want{Done, "", false}},
		{Delete, "held", want{Done, "", false}},
		{Delete, "claimed", want{Busy, "claimed", false}},
		{Delete, "new", want{Busy, "new", false}},

		{Hold, "ready", want{Done, "held", true}},
		{Hold, "held", want{Unchanged, "held", true}},
		{Hold, "failed", want{Refused, "failed", false}},
		{Hold, "claimed", want{Busy, "claimed", false}},

		{Release, "held", want{Done, "ready", false}},
		{Release, "ready", want{Unchanged, "ready", true}},
		{Release, "failed", want{Refused, "failed", false}},

		{Retry, "ready", want{Done, "ready", false}},
		{Retry, "due", want{Unchanged, "ready", false}},
		{Retry, "failed", want{Done, "ready", false}},
		{Retry, "held", want{Refused, "held", true}},
		{Retry, "claimed", want{Busy, "claimed", false}},

		{Flush, "ready", want{Done, "ready", false}},
		{Flush, "due", want{Unchanged, "ready", false}},
		{Flush, "held", want{Refused, "held", true}},
	}
	for _, tt := range tests {
		t.Run(tt.act.String()+"/"+tt.msg, func(t *testing.T) {
			ts := newTestSpool(t)
			id := ts.byState[tt.msg]
			before, _, _ := ts.s.Read(id)
			res := Apply(ts.s, tt.act, []string{id})
			if len(res) != 1 || res[0].ID != id || res[0].Outcome != tt.want.outcome {
				t.Fatalf("Apply(%v, %s) = %+v; want outcome %q", tt.act, tt.msg, res, tt.want.outcome)
			}
			env, st, err := ts.s.Read(id)
			if tt.want.state == "" {
				if !errors.Is(err, spool.ErrNotFound) {
					t.Errorf("after %v: Read = %v, %v; want gone", tt.act, st, err)
				}
				if _, err := os.Stat(ts.s.ContentPath(id)); !os.IsNotExist(err) {
					t.Errorf("after %v: content file still there (%v)", tt.act, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if st.String() != tt.want.state || !env.NextAttempt.IsZero() != tt.want.next {
				t.Errorf("after %v: state %v, next attempt %v; want %s, next set %v",
					tt.act, st, env.NextAttempt, tt.want.state, tt.want.next)
			}
			// A failed message given back gets a fresh queue lifetime;
			// nothing else does.
			if stamped := !env.Requeued.IsZero(); stamped != (tt.act == Retry && tt.msg == "failed") {
				t.Errorf("after %v of a %s message: Requeued = %v", tt.act, tt.msg, env.Requeued)
			}
			// Recipient statuses survive every change: the relay decides
			// what a retried failed recipient becomes.
			if d := cmp.Diff(before.Recipients, env.Recipients); d != "" {
				t.Errorf("after %v: recipients changed (-before +after):\n%s", tt.act, d)
			}
		})
	}
}

func TestApplyUnknown(t *testing.T) {
	ts := newTestSpool(t)
	res := Apply(ts.s, Delete, []string{"0000000000000000", "../../x", ts.due})
	got := []Outcome{res[0].Outcome, res[1].Outcome, res[2].Outcome}
	if d := cmp.Diff([]Outcome{NotFound, NotFound, Done}, got); d != "" {
		t.Errorf("outcomes (-want +got):\n%s", d)
	}
}

func TestApplyStaleClaim(t *testing.T) {
	// A .busy envelope nobody holds (its forwarder died) is as good as
	// ready: hold and retry take it.
	ts := newTestSpool(t)
	os.Rename(ts.s.EnvelopePath(ts.due, spool.Ready), ts.s.EnvelopePath(ts.due, spool.Claimed))
	if r := Apply(ts.s, Hold, []string{ts.due})[0]; r.Outcome != Done || r.From != "claimed" || r.To != "held" {
		t.Errorf("Hold(stale claim) = %+v; want done claimed -> held", r)
	}
}

func TestSelect(t *testing.T) {
	ts := newTestSpool(t)
	tests := []struct {
		act  Action
		sel  Selector
		want []string
	}{
		{Delete, Selector{All: true}, []string{ts.ready, ts.due, ts.failed, ts.held, ts.claimed}},
		{Hold, Selector{All: true}, []string{ts.ready, ts.due, ts.claimed}},
		{Release, Selector{All: true}, []string{ts.held}},
		{Retry, Selector{All: true}, []string{ts.ready, ts.due, ts.failed}},
		{Flush, Selector{All: true}, []string{ts.ready, ts.due}},
		{Delete, Selector{Match: "NO SUCH USER"}, []string{ts.failed}},
		{Delete, Selector{Match: "heidi@"}, []string{ts.held}},
		{Delete, Selector{Match: "mallory"}, nil}, // new: never selected
		{Hold, Selector{Match: "example.org"}, []string{ts.ready}},
		{Delete, Selector{}, nil},
	}
	for _, tt := range tests {
		got, err := Select(ts.s, tt.act, tt.sel)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(tt.want, got, cmpopts.SortSlices(func(a, b string) bool { return a < b }), cmpopts.EquateEmpty()); d != "" {
			t.Errorf("Select(%v, %+v) (-want +got):\n%s", tt.act, tt.sel, d)
		}
	}
}

func TestNotify(t *testing.T) {
	s, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(s.Dir(), PIDFile)
	if _, err := Notify(s); !errors.Is(err, ErrNoRelay) {
		t.Errorf("Notify without pid file = %v; want ErrNoRelay", err)
	}

	os.WriteFile(pidFile, []byte("not a pid\n"), 0o644)
	if _, err := Notify(s); err == nil || errors.Is(err, ErrNoRelay) {
		t.Errorf("Notify with a bad pid file = %v; want an error naming it", err)
	}

	// A process that has exited.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(pidFile, []byte(strconv.Itoa(dead.Process.Pid)+"\n"), 0o644)
	if _, err := Notify(s); !errors.Is(err, ErrNoRelay) {
		t.Errorf("Notify with a dead pid = %v; want ErrNoRelay", err)
	}

	// A live process that started after the pid file was written: the
	// pid was reused, and SIGHUP, which ends sleep, must not be sent.
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc: cannot tell a stale pid file")
	}
	sleep := exec.Command("sleep", "30")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleep.Process.Kill()
	exited := make(chan struct{})
	go func() { sleep.Wait(); close(exited) }()
	os.WriteFile(pidFile, []byte(strconv.Itoa(sleep.Process.Pid)+"\n"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(pidFile, old, old)
	if _, err := Notify(s); !errors.Is(err, ErrNoRelay) {
		t.Errorf("Notify with a stale pid file = %v; want ErrNoRelay", err)
	}
	select {
	case <-exited:
		t.Fatal("the process named by a stale pid file was signalled")
	case <-time.After(100 * time.Millisecond):
	}

	// The same process, pid file written after it started: it is the relay.
	os.Chtimes(pidFile, time.Now(), time.Now())
	pid, err := Notify(s)
	if err != nil || pid != sleep.Process.Pid {
		t.Fatalf("Notify = %d, %v; want %d, nil", pid, err, sleep.Process.Pid)
	}
	select {
	case <-exited: // SIGHUP ends sleep: it was signalled
	case <-time.After(5 * time.Second):
		t.Error("SIGHUP not delivered")
	}
}

func TestActionString(t *testing.T) {
	var got []string
	for a := Delete; a <= Flush; a++ {
		got = append(got, a.String())
	}
	if s := strings.Join(got, " "); s != "delete hold release retry flush" {
		t.Errorf("actions = %q", s)
	}
}

// TestChangeSelectedGone: a message that a selection chose and that is
// gone by the change (delivered meanwhile, as "retry --all" from cron
// races with delivery) counts as unchanged; named by the user, it is not
// found, a failure.
func TestChangeSelectedGone(t *testing.T) {
	s, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	keep := addMessage(t, s, "a@example.com", []string{"b@example.net"}, false, nil, spool.Ready)
	gone := addMessage(t, s, "c@example.com", []string{"d@example.net"}, false, nil, spool.Ready)
	ids, err := Select(s, Retry, Selector{All: true})
	if err != nil || len(ids) != 2 {
		t.Fatalf("Select = %v, %v", ids, err)
	}
	c, err := s.Lock(gone)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(); err != nil {
		t.Fatal(err)
	}
	if rep := Change(s, Retry, ids, Selected); rep.Failed != 0 {
		t.Errorf("selected: %+v; want no failure for the message gone since", rep)
	}
	if rep := Change(s, Retry, []string{keep, gone}, Named); rep.Failed != 1 {
		t.Errorf("named: %+v; want the gone message not found", rep)
	}
}

// TestChangeSelectedBusy: a message the relay took for delivery between
// "retry --all" selecting it and retrying it is being delivered already,
// which is what retry and flush ask for: not a failure (exit 1 from a cron
// job's retry, seen as a flaky TestRevDur3KillEMailRelaySpool). Named, or
// for delete and hold, which want it stopped, it stays one.
func TestChangeSelectedBusy(t *testing.T) {
	s, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	busy := addMessage(t, s, "a@example.com", []string{"b@example.net"}, false, nil, spool.Ready)
	c, err := s.Lock(busy)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Unlock()
	for _, act := range []Action{Retry, Flush} {
		if rep := Change(s, act, []string{busy}, Selected); rep.Failed != 0 || rep.Unchanged != 1 {
			t.Errorf("%v selected: %+v; want the busy message unchanged, no failure", act, rep)
		}
		if rep := Change(s, act, []string{busy}, Named); rep.Failed != 1 {
			t.Errorf("%v named: %+v; want it busy", act, rep)
		}
	}
	if rep := Change(s, Hold, []string{busy}, Selected); rep.Failed != 1 {
		t.Errorf("hold selected: %+v; want it busy", rep)
	}
}
