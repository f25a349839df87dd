package spool

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func testEnvelope() *Envelope {
	return &Envelope{
		From:       "alice@example.com",
		Recipients: []Recipient{{Addr: "bob@example.net", Status: Pending}, {Addr: "carol@example.org", Status: Pending}},
		BodyType:   "8bit",
		Client:     "127.0.0.1:40000",
		Helo:       "client.example",
		ClientName: "mx.client.example",
		AuthID:     "alice user",
		Arrival:    t0,
	}
}

func newMessage(t *testing.T, s *Spool, content string) string {
	t.Helper()
	w, err := s.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, content)
	if err := w.Prepare(testEnvelope()); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	return w.ID()
}

// noFiles reports, as an error of t, any file left in dir; when says at
// what point. It returns whether there was none.
func noFiles(t *testing.T, dir, when string) bool {
	t.Helper()
	got := files(t, dir)
	if len(got) != 0 {
		t.Errorf("files %s: %v; want none", when, got)
	}
	return len(got) == 0
}

func files(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, de := range des {
		if !de.IsDir() {
			out = append(out, de.Name())
		}
	}
	sort.Strings(out)
	return out
}

func TestEnvelopeRoundTrip(t *testing.T) {
	e := testEnvelope()
	e.ID = "X"
	e.Attempts = 3
	e.NextAttempt = t0.Add(time.Hour)
	e.LastReply = "451 4.3.0 try again\r\nlater"
	e.Recipients = []Recipient{
		{Addr: "sent@example.net", Status: Sent, Reply: "250 2.0.0 Ok"},
		{Addr: "bad@example.net", Status: Bounced, Reply: "550 5.1.1 no such user", InReplyTo: "RCPT TO", RemoteMTA: "mx.example.net[192.0.2.25]"},
		{Addr: "later@example.net", Status: Deferred, Reply: "451 4.2.0 greylisted", InReplyTo: "end of DATA"},
		{Addr: "new@example.net", Status: Pending, Notify: "SUCCESS,FAILURE", ORCPT: "rfc822;orig@example.net"},
	}
	e.EnvID = "QQ314159"
	e.Ret = "HDRS"
	e.Warned = t0.Add(4 * time.Hour)
	e.Bounce = true
	e.Enforced = []string{"ban bad@example.net 1a2b3c4d"}
	e.Reasons = []string{"X-MailRelay-Reason: no such user", "X-MailRelay-ReasonCode: 550"}
	e.Extra = []string{"X-Custom: kept"}
	got, err := Unmarshal(bytes.NewReader(e.Marshal()))
	if err != nil {
		t.Fatal(err)
	}
	got.ID = "X"
	want := *e
	want.LastReply = "451 4.3.0 try again later"
	if d := cmp.Diff(&want, got); d != "" {
		t.Errorf("round trip (-want +got):\n%s", d)
	}
}

func TestUnmarshalEmailRelay(t *testing.T) {
	// An envelope as E-MailRelay 2.6 writes it.
	in := "X-MailRelay-Format: #2821.8\r\nX-MailRelay-Content: 7bit\r\nX-MailRelay-From: a@b.c\r\n" +
		"X-MailRelay-ToCount: 2\r\nX-MailRelay-To-Remote: x@y.z\r\nX-MailRelay-To-Local: mbox\r\n" +
		"X-MailRelay-Authentication: bob+20smith\r\nX-MailRelay-Client: 192.168.1.2:1234\r\n" +
		"X-MailRelay-ClientCertificate: \r\nX-MailRelay-MailFromAuthIn: \r\nX-MailRelay-MailFromAuthOut: \r\n" +
		"X-MailRelay-ForwardTo: \r\nX-MailRelay-ForwardToAddress: \r\nX-MailRelay-ClientAccountSelector: \r\n" +
		"X-MailRelay-Utf8MailboxNames: 0\r\nX-MailRelay-End: 1\r\nX-MailRelay-Reason: 550 nope\r\nX-MailRelay-ReasonCode: 550\r\n"
	e, err := Unmarshal(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	// To-Local is a mailbox name for E-MailRelay's local delivery, not a
	// recipient to forward to (it was one, and went out as RCPT TO:<mbox>).
	if e.From != "a@b.c" || e.AuthID != "bob smith" || e.Client != "192.168.1.2:1234" || len(e.Recipients) != 1 ||
		len(e.Local) != 1 || e.Local[0] != "mbox" || len(e.Reasons) != 2 {
		t.Errorf("Unmarshal = %+v", e)
	}
	out := string(e.Marshal())
	if !strings.Contains(out, "X-MailRelay-ToCount: 2\r\nX-MailRelay-To-Local: mbox\r\nX-MailRelay-To-Remote: x@y.z\r\n") {
		t.Errorf("Marshal lost the To-Local line or its count:\n%s", out)
	}
}

func TestUnmarshalTorn(t *testing.T) {
	full := string(testEnvelope().Marshal())
	for _, n := range []int{0, 10, len(full) / 2, strings.Index(full, "X-MailRelay-End")} {
		if _, err := Unmarshal(strings.NewReader(full[:n])); err == nil {
			t.Errorf("Unmarshal(first %d bytes) = nil error; want torn", n)
		}
	}
}

func TestLifecycle(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := newMessage(t, s, "Subject: hi\r\n\r\nbody\r\n")
	if got, want := files(t, dir), []string{id + ".content", id + ".envelope"}; !cmp.Equal(got, want) {
		t.Fatalf("files after commit = %v; want %v", got, want)
	}

	c, err := s.Claim(id)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(id); !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrBusy) {
		t.Errorf("second Claim = %v; want busy or not found", err)
	}
	if _, err := s.Lock(id); !errors.Is(err, ErrBusy) {
		t.Errorf("Lock of claimed = %v; want ErrBusy", err)
	}
	r, size, err := c.Content()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "Subject: hi\r\n\r\nbody\r\n" || size != int64(len(b)) {
		t.Errorf("content = %q (%d)", b, size)
	}
	c.Env.Recipients[0].Status = Sent
	c.Env.Recipients[1].Status = Bounced
	if err := c.Move(Failed); err != nil {
		t.Fatal(err)
	}
	env, st, err := s.Read(id)
	if err != nil || st != Failed || env.Recipients[0].Status != Sent || env.Recipients[1].Status != Bounced {
		t.Fatalf("Read = %+v, %v, %v", env, st, err)
	}

	c, err = s.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(); err != nil {
		t.Fatal(err)
	}
	noFiles(t, dir, "after delete")
}

func TestAbort(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	w, _ := s.Create(t0)
	io.WriteString(w, "x")
	w.Prepare(testEnvelope())
	w.Abort()
	noFiles(t, dir, "after abort")
}

// TestAbortAfterFailedCommit: when the directory fsync after Commit's rename
// fails, the envelope may already be durable in state Ready. The writer's
// owner hears an error and aborts; the message must stay whole (it is
// forwarded, and the client's retry at worst duplicates it), never an
// envelope without its content.
func TestAbortAfterFailedCommit(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	w, _ := s.Create(t0)
	io.WriteString(w, "x")
	if err := w.Prepare(testEnvelope()); err != nil {
		t.Fatal(err)
	}
	s.failDirSync = errors.New("injected: fsync failed")
	if err := w.Commit(false); err == nil {
		t.Fatal("Commit with a failing directory fsync = nil; want an error")
	}
	s.failDirSync = nil
	w.Abort()
	want := []string{w.ID() + ".content", w.ID() + ".envelope"}
	if got := files(t, dir); !cmp.Equal(got, want) {
		t.Errorf("files after a failed Commit and Abort = %v; want %v", got, want)
	}
}

func TestRecover(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)

	ready := newMessage(t, s, "ready")
	stale := newMessage(t, s, "stale")
	os.Rename(s.envelopePath(stale, Ready), s.envelopePath(stale, Claimed))
	live := newMessage(t, s, "live")
	liveClaim, err := s.Claim(live)
	if err != nil {
		t.Fatal(err)
	}
	defer liveClaim.Unlock()

	// A receipt that died after Prepare, before Commit.
	w, _ := s.Create(t0)
	io.WriteString(w, "unacked")
	w.Prepare(testEnvelope())
	unacked := w.ID()
	w.f.Close()           // the writer's process dies: its lock goes,
	s.endReceipt(unacked) // and its receipts with it

	// A receipt that died before its envelope existed.
	w, _ = s.Create(t0)
	io.WriteString(w, "orphan")
	w.bw.Flush()
	orphan := w.ID()
	w.f.Close()
	s.endReceipt(orphan)

	// A receipt in progress in a live writer.
	inflight, _ := s.Create(t0)
	defer inflight.Abort()

	// A torn envelope.
	torn := newMessage(t, s, "torn")
	full, _ := os.ReadFile(s.envelopePath(torn, Ready))
	os.WriteFile(s.envelopePath(torn, Ready), full[:len(full)/2], 0o640)

	// An envelope whose content is gone.
	nocontent := newMessage(t, s, "gone")
	os.Remove(s.contentPath(nocontent))

	rep, err := s.Recover()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(rep.Quarantined)
	wantQ := []string{unacked, orphan, torn, nocontent}
	sort.Strings(wantQ)
	want := RecoveryReport{Ready: 2, Released: []string{stale}, Quarantined: wantQ, InUse: 2}
	if d := cmp.Diff(want, rep, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(RecoveryReport{}, "Reasons")); d != "" {
		t.Errorf("Recover report (-want +got):\n%s", d)
	}
	for _, id := range wantQ {
		if rep.Reasons[id] == "" {
			t.Errorf("no reason for quarantined %s", id)
		}
	}
	for _, id := range []string{ready, stale} {
		if _, st, err := s.Read(id); err != nil || st != Ready {
			t.Errorf("Read(%s) = %v, %v; want ready", id, st, err)
		}
	}
	if _, st, _ := s.Read(live); st != Claimed {
		t.Errorf("live claim state = %v; want claimed (left alone)", st)
	}
	q := files(t, filepath.Join(dir, quarantineDir))
	for _, id := range wantQ {
		found := false
		for _, n := range q {
			found = found || strings.HasPrefix(n, id)
		}
		if !found {
			t.Errorf("quarantine %v lacks %s", q, id)
		}
	}
}

func FuzzUnmarshal(f *testing.F) {
	f.Add(testEnvelope().Marshal())
	f.Add([]byte("X-MailRelay-Format: #2821.8\nX-MailRelay-End: 1\nX-Relaykeeper-Rcpt: sent a@b 250 ok\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := Unmarshal(bytes.NewReader(b))
		if err != nil {
			return
		}
		// What parses must survive a round trip unchanged.
		e2, err := Unmarshal(bytes.NewReader(e.Marshal()))
		if err != nil {
			t.Fatalf("re-parse of marshalled envelope: %v", err)
		}
		if len(e2.Recipients) != len(e.Recipients) {
			t.Fatalf("recipients %d after round trip; want %d", len(e2.Recipients), len(e.Recipients))
		}
	})
}

// TestRelockAfterReplace: a filter that renames a new content file over the
// old one must not leave the message unlocked.
func TestRelockAfterReplace(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	w, _ := s.Create(t0)
	io.WriteString(w, "old")
	w.Prepare(testEnvelope())
	os.WriteFile(s.ContentPath(w.ID())+".tmp", []byte("new"), 0o640)
	os.Rename(s.ContentPath(w.ID())+".tmp", s.ContentPath(w.ID()))
	// Before Relock the new file is free: anyone could take the message.
	f, err := s.lockContent(w.ID())
	if err != nil {
		t.Fatalf("lock on the replaced content = %v; want it free before Relock", err)
	}
	f.Close()
	if err := w.Relock(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.lockContent(w.ID()); !errors.Is(err, ErrBusy) {
		t.Errorf("lock after Relock = %v; want ErrBusy (the writer holds it)", err)
	}
	w.Abort()
}

// TestFinish: Finish leaves a ready message, and one that cannot be
// prepared leaves nothing.
func TestFinish(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	w, _ := s.Create(t0)
	io.WriteString(w, "x")
	if err := w.Finish(testEnvelope()); err != nil {
		t.Fatalf("Finish = %v", err)
	}
	if _, err := os.Stat(s.envelopePath(w.ID(), Ready)); err != nil {
		t.Errorf("after Finish: %v; want a ready envelope", err)
	}

	dir = t.TempDir()
	s, _ = Open(dir, nil)
	w, _ = s.Create(t0)
	io.WriteString(w, "x")
	w.Abort() // the content file is gone: Prepare cannot flush into it
	if err := w.Finish(testEnvelope()); err == nil {
		t.Errorf("Finish after Abort = nil; want an error")
	}
	noFiles(t, dir, "after a failed Finish")
}
