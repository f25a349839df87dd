package postfixlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSteer17AmavisSubjectQueuedAs: amavis (2.7 and later, and the
// templates that log them) writes the Subject and From header fields
// after queued_as, and the parser took queued_as from its last
// occurrence. A sender whose Subject held ", queued_as: ID" linked the
// message ID (another client's re-injected copy) to its own original:
// Gmail's refusal of the other client's message was laid at the
// sender's door, and the other client was never sanctioned. An amavis
// line whose queued_as is not the only one is ambiguous and links
// nothing; Postfix's own hand-over line still does.
func TestSteer17AmavisSubjectQueuedAs(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("testdata", "hostile", "amavis-subject-queued-as.log"))
	if err != nil {
		t.Fatal(err)
	}
	tr := &Tracker{}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if e, ok := ParseLine(line); ok {
			for _, r := range tr.Add(e) {
				got[r.QueueID] = r.ClientIP
			}
		}
	}
	for _, r := range tr.Release(0) {
		got[r.QueueID] = r.ClientIP
	}
	for id, want := range map[string]string{"7F1A2B3C4D5": "198.51.100.7", "5D0E1985119": "203.0.113.66"} {
		if got[id] != want {
			t.Errorf("refusal of %s: client %q; want %q (all: %v)", id, got[id], want, got)
		}
	}

	for line, want := range map[string]string{
		// The template's own.
		"Dec  6 14:00:03 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, [203.0.113.66]:40000 [203.0.113.66] <b@a.example> -> <c@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <a1@a.example>, mail_id: a, Hits: -0.1, size: 1234, queued_as: 5D0E1985119, Subject: \"hi\", From: b_<b@a.example>, dkim_sd=s:a.example, 812 ms": "5D0E1985119",
		"Dec  6 14:00:03 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, [203.0.113.66]:40000 [203.0.113.66] <b@a.example> -> <c@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <a1@a.example>, mail_id: a, Hits: -0.1, size: 1234, queued_as: 5D0E1985119/6E1F2A9811A, 812 ms":                                                  "5D0E1985119/6E1F2A9811A",
		// The sender's text after it, or before it.
		"Dec  6 14:00:03 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, [203.0.113.66]:40000 [203.0.113.66] <b@a.example> -> <c@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <a1@a.example>, mail_id: a, Hits: -0.1, size: 1234, queued_as: 5D0E1985119, Subject: \"x, queued_as: 7F1A2B3C4D5, y\", 812 ms":     "",
		"Dec  6 14:00:03 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, [203.0.113.66]:40000 [203.0.113.66] <b@a.example> -> <c@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <a1@a.example>, mail_id: a, Hits: -0.1, size: 1234, queued_as: 5D0E1985119, From: x,_queued_as:_7F1A2B3C4D5_<b@a.example>, 812 ms": "5D0E1985119",
		"Dec  6 14:00:03 mx1 amavis[3135]: (03135-08) Passed CLEAN {RelayedInbound}, [203.0.113.66]:40000 [203.0.113.66] <b@a.example> -> <c@gmail.com>, Queue-ID: 4C2B7985118, Message-ID: <a, queued_as: 7F1A2B3C4D5, b@a.example>, mail_id: a, Hits: -0.1, size: 1234, queued_as: 5D0E1985119, 812 ms":                      "",
	} {
		e, ok := ParseLine(line)
		if !ok || e.Kind != Amavis {
			t.Errorf("ParseLine(%q) not read as amavis's", line)
			continue
		}
		if g := strings.Join(e.QueuedAs, "/"); g != want {
			t.Errorf("ParseLine(%q): queued_as %q; want %q", line, g, want)
		}
	}
}
