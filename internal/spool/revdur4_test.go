package spool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// damagedFirstRecord makes revDur3Segment's spool with the first
// message's content damaged, and returns the two records salvage finds
// after it ("two" and "three").
func damagedFirstRecord(t *testing.T) (dir string, recs []*record) {
	t.Helper()
	dir, path, b, _ := revDur3Segment(t)
	offs := recordOffsets(b)
	first := b[offs[0]:offs[1]]
	first[len(first)-3] ^= 0x20
	os.WriteFile(path, b, 0o640)
	recs, _ = salvageRecords(b, int64(offs[0]))
	if len(recs) != 2 {
		t.Fatalf("%d records after the damage; want 2", len(recs))
	}
	return dir, recs
}

// TestRevDur4SalvageFailureKeepsSegment: a message found after a damaged
// record that salvage could not set aside (a full disk at start, a
// quarantine it cannot write) was logged as "in the segment kept in
// quarantine", and the segment left the journal all the same: no later
// start looked at it again, queue quarantine listed it as though the
// messages after the damage were "set aside above", and nothing but a hex
// editor brought them back. The segment now stays in the journal, and
// the next start salvages them.
func TestRevDur4SalvageFailureKeepsSegment(t *testing.T) {
	dir, recs := damagedFirstRecord(t)
	// "two" cannot be written into quarantine.
	q := filepath.Join(dir, quarantineDir)
	block := filepath.Join(q, "."+recs[0].id+".content.salvage")
	if err := os.MkdirAll(filepath.Join(block, "x"), 0o750); err != nil {
		t.Fatal(err)
	}
	s2, _ := Open(dir, nil)
	s2.Recover()
	if got := s2.inspectQuarantined(recs[1].id); len(got.States) != 1 || got.States[0] != Held {
		t.Errorf("three, which could be set aside: %+v; want held in quarantine", got)
	}

	// Room again; the next start.
	os.RemoveAll(block)
	s3, _ := Open(dir, nil)
	if _, err := s3.Recover(); err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if got := s3.inspectQuarantined(r.id); got.Problem != "" || len(got.States) != 1 || got.States[0] != Held {
			t.Errorf("message %s after the next start: %+v; want restorable, held", r.id, got)
		}
	}
}

// TestRevDur4LongRepliesKeepEnvelopeReadable: the envelope keeps each
// recipient's last reply whole, and an upstream's reply may be 100 lines
// of 2,048 octets (what the client keeps of one): an MX that answers a
// 300-recipient message so (451, to each RCPT or at the end of DATA)
// made its envelope 60 MiB at the deferral's rewrite, past what
// readEnvelopeFile reads (it stops past 16 MiB as it doubles its buffer,
// at 32 MiB), and from then on unreadable: the message, for every
// recipient, was quarantined as torn. So were 20,000 recipients of a
// virtual alias (what MaxAcceptedEnvelope lets in) deferred with one
// long line (46 MiB). A kept reply
// is now cut, as Postfix keeps at most line_length_limit of one, shorter
// still for a message of very many recipients.
func TestRevDur4LongRepliesKeepEnvelopeReadable(t *testing.T) {
	long := "451 4.3.0 " + strings.Repeat("x", 2040)
	multi := strings.TrimSpace(strings.Repeat("451-4.3.0 "+strings.Repeat("y", 2038)+" ", 100))
	for _, tc := range []struct {
		name  string
		n     int
		reply string
	}{{"300 recipients, 100-line reply", 300, multi}, {"20000 recipients, one long line", 20000, long}} {
		env := testEnvelope()
		env.Recipients = nil
		for i := range tc.n {
			env.Recipients = append(env.Recipients, Recipient{Addr: fmt.Sprintf("member%06d@example.net", i),
				Status: Deferred, Reply: tc.reply, RemoteMTA: "mx.example.net[192.0.2.25]", InReplyTo: "end of DATA"})
		}
		env.Reasons = nil
		b := env.Marshal()
		got, err := Unmarshal(bytes.NewReader(b))
		if err != nil || len(b) > maxEnvelope {
			t.Errorf("%s: the envelope (%d octets) does not read back: %v", tc.name, len(b), err)
			continue
		}
		if r := got.Recipients[tc.n-1]; r.Status != Deferred || !strings.HasPrefix(r.Reply, "451") {
			t.Errorf("%s: last recipient read back as %+v", tc.name, r)
		}
	}
}

// TestRevDur4SalvageAfterPowerLoss: after a power loss (another boot), a
// message recorded after a damaged record may have files that did not
// survive whole: its content was never synced (the record was), and its
// envelope's rename from .new may be lost. Salvage took any file of that
// id for the message and skipped the record, the only whole copy: the
// envelope still .new was quarantined as "the client was not told 250"
// with the torn content; a content file with no envelope was moved into
// quarantine over the whole content salvage had just set aside. The
// record's copy now replaces torn files, held.
func TestRevDur4SalvageAfterPowerLoss(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state State // of the envelope left; 0: none
	}{{"envelope still new", New}, {"no envelope", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			dir, recs := damagedFirstRecord(t)
			two := recs[0]
			torn := two.content[:len(two.content)/2]
			os.WriteFile(filepath.Join(dir, two.id+".content"), torn, 0o640)
			if tc.state != 0 {
				os.WriteFile(filepath.Join(dir, two.id+stateSuffix[tc.state]), two.envelope, 0o640)
			}
			s2, _ := Open(dir, nil)
			s2.boot = "another boot"
			if _, err := s2.Recover(); err != nil {
				t.Fatal(err)
			}
			whole := false
			for _, p := range []string{filepath.Join(dir, two.id+".content"), filepath.Join(dir, quarantineDir, two.id+".content")} {
				if c, err := os.ReadFile(p); err == nil && bytes.Equal(c, two.content) {
					whole = true
				}
			}
			if !whole {
				matches, _ := filepath.Glob(filepath.Join(dir, "*"+two.id+"*"))
				q, _ := filepath.Glob(filepath.Join(dir, quarantineDir, "*"+two.id+"*"))
				t.Errorf("no whole copy of the message left (spool %v, quarantine %v)", matches, q)
			}
			if st, err := s2.find(two.id); err == nil && st != Held {
				t.Errorf("the message is %v in the spool; want held until an administrator checks it", st)
			}
		})
	}
}

// TestRevDur4UnmarshalPastLimit: Unmarshal read an envelope only up to
// maxEnvelope and parsed what it got, so an envelope a filter made longer
// passed the server's check of the filtered envelope and the client heard
// 250; past 32 MiB (where readEnvelopeFile, whose buffer doubles, stops)
// every later read of the file quarantined the message as torn. Unmarshal
// now refuses an envelope past maxEnvelope, and the filter's result is a
// broken envelope (451).
func TestRevDur4UnmarshalPastLimit(t *testing.T) {
	env := testEnvelope()
	for len(env.Extra)*1000 < maxEnvelope+(1<<20) {
		env.Extra = append(env.Extra, "X-Filter-Note: "+strings.Repeat("n", 985))
	}
	b := env.Marshal()
	if _, err := Unmarshal(bytes.NewReader(b)); err == nil {
		t.Errorf("Unmarshal of a %d-octet envelope succeeded; want it refused as readEnvelopeFile refuses it", len(b))
	}
	if _, err := Unmarshal(bytes.NewReader(testEnvelope().Marshal())); err != nil {
		t.Errorf("Unmarshal of a usual envelope: %v", err)
	}
}
