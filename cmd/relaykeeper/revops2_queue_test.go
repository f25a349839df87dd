package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// A forwarder that died mid-delivery (a crashed --as-client run, a
// kill -9) leaves ID.envelope.busy with nobody holding its lock. Until the
// relay's next start recovers it, an administrator must be able to see that
// it is stuck, not "being delivered now", and send it again with retry or
// flush, as postsuper -r / postqueue -f would.
func TestRevOps2StaleClaimAfterCrash(t *testing.T) {
	q := newQueueSpool(t)
	stuck := queueMessage(t, q.s, 5, "kate@example.com", []string{"leo@example.net"}, spool.Ready, nil)
	if err := os.Rename(filepath.Join(q.dir, stuck+".envelope"), filepath.Join(q.dir, stuck+".envelope.busy")); err != nil {
		t.Fatal(err)
	}

	status, out, _ := q.run(t, "", "list")
	if status != 0 {
		t.Fatalf("list: status %d", status)
	}
	block := out[strings.Index(out, stuck):]
	if strings.Contains(block, "being delivered now") || !strings.Contains(block, "process that died") {
		t.Errorf("a claim nobody holds is listed as\n%s\nwant it to say its forwarder died", block)
	}
	// The live claim (CLAIMED, locked by this test) is still being delivered.
	if !strings.Contains(out[strings.Index(out, "CLAIMED"):], "being delivered now") {
		t.Errorf("the live claim is listed as\n%s", out)
	}

	_, js, _ := q.run(t, "", "list", "--state", "claimed", "--json")
	var l struct {
		Messages []struct {
			ID         string `json:"id"`
			StaleClaim bool   `json:"stale_claim"`
		} `json:"messages"`
	}
	if err := json.Unmarshal([]byte(js), &l); err != nil {
		t.Fatal(err)
	}
	stale := map[string]bool{}
	for _, m := range l.Messages {
		stale[m.ID] = m.StaleClaim
	}
	if !stale[stuck] || stale["CLAIMED"] {
		t.Errorf("stale_claim in --json: %v; want true for %s only", stale, stuck)
	}

	// retry --all takes the stuck message, and leaves the live claim alone
	// without calling it an error.
	status, out, errOut := q.run(t, "", "retry", "--all")
	if status != 0 || !strings.Contains(out, stuck+": due now (claimed -> ready)") {
		t.Errorf("retry --all: status %d\n%s%s", status, out, errOut)
	}
	if st := q.state(t, stuck); st != "ready" {
		t.Errorf("after retry --all the stuck message is %s, want ready", st)
	}
	if st := q.state(t, q.claimed); st != "claimed" {
		t.Errorf("after retry --all the live claim is %s, want claimed", st)
	}

	// flush does the same.
	if err := os.Rename(filepath.Join(q.dir, stuck+".envelope"), filepath.Join(q.dir, stuck+".envelope.busy")); err != nil {
		t.Fatal(err)
	}
	status, out, errOut = q.run(t, "", "flush")
	if status != 0 || !strings.Contains(out, stuck+": due now (claimed -> ready)") {
		t.Errorf("flush: status %d\n%s%s", status, out, errOut)
	}
	if st := q.state(t, stuck); st != "ready" {
		t.Errorf("after flush the stuck message is %s, want ready", st)
	}
}

// quarantine puts id's files into the quarantine directory as recovery does
// (same names), replacing its envelope's text with env when env is not
// empty.
func quarantineFiles(t *testing.T, q *queueSpool, id, from, to, env string) {
	t.Helper()
	qd := filepath.Join(q.dir, ".quarantine")
	if err := os.Rename(filepath.Join(q.dir, id+".content"), filepath.Join(qd, id+".content")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(q.dir, id+from), filepath.Join(qd, id+to)); err != nil {
		t.Fatal(err)
	}
	if env != "" {
		if err := os.WriteFile(filepath.Join(qd, id+to), []byte(env), 0o640); err != nil {
			t.Fatal(err)
		}
	}
}

// Recovery moves torn and unacknowledged messages to .quarantine/. A
// Postfix administrator expects to list them (as the corrupt queue) and to
// put a repaired one back with one command, not by moving files by hand.
func TestRevOps2QuarantineListRestore(t *testing.T) {
	q := newQueueSpool(t)
	broken := queueMessage(t, q.s, 6, "kate@example.com", []string{"leo@example.net"}, spool.Ready, nil)
	good, err := os.ReadFile(filepath.Join(q.dir, broken+".envelope"))
	if err != nil {
		t.Fatal(err)
	}
	torn := strings.Replace(string(good), "X-MailRelay-End: 1\r\n", "", 1)
	if torn == string(good) {
		t.Fatalf("no End line in\n%s", good)
	}
	quarantineFiles(t, q, broken, ".envelope", ".envelope", torn)
	unacked := queueMessage(t, q.s, 7, "mia@example.com", []string{"ned@example.net"}, spool.Ready, nil)
	quarantineFiles(t, q, unacked, ".envelope", ".envelope.new", "")
	os.WriteFile(filepath.Join(q.dir, ".quarantine", "journal-1234.log"), []byte("x"), 0o640)

	status, out, errOut := q.run(t, "", "quarantine")
	if status != 0 {
		t.Fatalf("quarantine: status %d: %s", status, errOut)
	}
	for _, want := range []string{broken, unacked, "<mia@example.com>", "envelope line", "journal-1234.log",
		"queue restore " + unacked} {
		if !strings.Contains(out, want) {
			t.Errorf("queue quarantine does not say %q:\n%s", want, out)
		}
	}
	_, js, _ := q.run(t, "", "quarantine", "--json")
	var l struct {
		Messages []struct {
			ID         string `json:"id"`
			Restorable bool   `json:"restorable"`
			Problem    string `json:"problem"`
		} `json:"messages"`
		Journals []string `json:"journals"`
	}
	if err := json.Unmarshal([]byte(js), &l); err != nil {
		t.Fatalf("%v in\n%s", err, js)
	}
	if len(l.Messages) != 2 || l.Messages[0].ID != broken || l.Messages[0].Restorable ||
		!strings.Contains(l.Messages[0].Problem, "envelope line") || !l.Messages[1].Restorable ||
		len(l.Journals) != 1 {
		t.Errorf("quarantine --json:\n%s", js)
	}

	// A torn envelope is not put back; the message says what to fix.
	status, out, _ = q.run(t, "", "restore", broken)
	if status != 1 || !strings.Contains(out, "envelope line") {
		t.Errorf("restore of a torn envelope: status %d\n%s", status, out)
	}
	if _, err := os.Stat(filepath.Join(q.dir, broken+".content")); err == nil {
		t.Errorf("a refused restore moved the content back")
	}
	// Repaired, it goes back ready.
	os.WriteFile(filepath.Join(q.dir, ".quarantine", broken+".envelope"), good, 0o640)
	status, out, errOut = q.run(t, "", "restore", broken)
	if status != 0 || !strings.Contains(out, broken+": restored (quarantined -> ready)") {
		t.Errorf("restore of a repaired envelope: status %d\n%s%s", status, out, errOut)
	}
	if st := q.state(t, broken); st != "ready" {
		t.Errorf("restored message is %s, want ready", st)
	}
	// The client of an unacknowledged receipt was never told 250 and may
	// have sent it again: it comes back held.
	status, out, _ = q.run(t, "", "restore", unacked, "--json")
	if status != 0 || !strings.Contains(out, `"to": "held"`) {
		t.Errorf("restore of an unacknowledged message: status %d\n%s", status, out)
	}
	if st := q.state(t, unacked); st != "held" {
		t.Errorf("restored unacknowledged message is %s, want held", st)
	}
	// An id already in the spool is never overwritten.
	quarantineFiles(t, q, q.due, ".envelope", ".envelope", "")
	queueMessageWithID(t, q, q.due)
	status, out, _ = q.run(t, "", "restore", q.due)
	if status != 1 || !strings.Contains(out, "already in the spool") {
		t.Errorf("restore over a message in the spool: status %d\n%s", status, out)
	}
	status, out, _ = q.run(t, "", "restore", "6B0000000000FFFF")
	if status != 1 || !strings.Contains(out, "not found") {
		t.Errorf("restore of an unknown id: status %d\n%s", status, out)
	}
	status, _, errOut = q.run(t, "", "restore", "--all")
	if status != 2 {
		t.Errorf("restore --all: status %d, want 2 (%s)", status, errOut)
	}
	if status, out, _ = q.run(t, "", "quarantine"); status != 0 || strings.Contains(out, "\n"+broken) {
		t.Errorf("after the restores, quarantine lists\n%s", out)
	}
}

// queueMessageWithID puts a ready message with files named id into q's
// spool directory.
func queueMessageWithID(t *testing.T, q *queueSpool, id string) {
	t.Helper()
	os.WriteFile(filepath.Join(q.dir, id+".content"), []byte(qContent), 0o640)
	env := &spool.Envelope{From: "x@example.com", Recipients: []spool.Recipient{{Addr: "y@example.net"}}}
	os.WriteFile(filepath.Join(q.dir, id+".envelope"), env.Marshal(), 0o640)
}

// A message recovery set aside is gone from the queue; `queue show ID` and
// the changes said only "no such message", which sends an administrator
// who has the id from the mail log's quarantine line looking for a lost
// message. They say where it is.
func TestRevOps2QuarantinedNotFoundSaysWhere(t *testing.T) {
	q := newQueueSpool(t)
	id := queueMessage(t, q.s, 6, "kate@example.com", []string{"leo@example.net"}, spool.Ready, nil)
	quarantineFiles(t, q, id, ".envelope", ".envelope.new", "")
	status, _, errOut := q.run(t, "", "show", id)
	if status != 1 || !strings.Contains(errOut, "queue quarantine") {
		t.Errorf("show of a quarantined message: status %d: %s", status, errOut)
	}
	status, out, _ := q.run(t, "", "hold", id)
	if status != 1 || !strings.Contains(out, "queue quarantine") {
		t.Errorf("hold of a quarantined message: status %d: %s", status, out)
	}
}
