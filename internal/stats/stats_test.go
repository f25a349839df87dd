package stats

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestGolden summarises testdata/mail.log, lines in the documented format
// (see internal/maillog/testdata/events.golden) with diagnostic lines and
// junk mixed in, and compares the report with testdata/report.json.golden.
func TestGolden(t *testing.T) {
	f, err := os.Open(filepath.Join("testdata", "mail.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rep, err := Aggregate(f, 10)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		t.Fatal(err)
	}
	got := buf.Bytes()
	golden := filepath.Join("testdata", "report.json.golden")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), string(got)); d != "" {
		t.Errorf("report differs from %s (-want +got):\n%s", golden, d)
	}

	// The figures the golden file pins, spelt out once.
	checks := []struct {
		name      string
		got, want int
	}{
		{"lines", rep.Lines, 27},
		{"skipped", rep.Skipped, 3},
		{"other events", rep.OtherEvents, 1},
		{"received", rep.Received.Messages, 4},
		{"delivered messages", rep.Delivered.Messages, 3},
		{"delivered recipients", rep.Delivered.Recipients, 4},
		{"deferred messages", rep.Deferred.Messages, 2},
		{"deferrals", rep.Deferred.Deferrals, 3},
		{"bounced", rep.Bounced.Recipients, 1},
		{"rejected", rep.Rejected.Total, 5},
		{"rejected at connect", rep.Rejected.ByStage["connect"], 3},
		{"proxied", rep.Proxied.Total, 2},
		{"quarantined", rep.Quarantined, 1},
		{"received 09h", rep.Hours[9].Received, 3},
		{"rejected 09h", rep.Hours[9].Rejected, 4},
		{"top reject reason count", rep.RejectReasons[0].Count, 3},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d; want %d", c.name, c.got, c.want)
		}
	}
}

func TestNormaliseReply(t *testing.T) {
	tests := []struct{ in, want string }{
		{"250 2.0.0 Ok: queued as 4XyZ", "250 2.0.0 Ok: queued as ID"},
		{`451-4.3.0 "busy" 451 4.3.0 try later`, `451 4.3.0 "busy" try later`},
		{"550-5.7.1 first line 550-5.7.1 second 550 5.7.1 last", "550 5.7.1 first line second last"},
		{"554-no enhanced 554 codes here", "554 no enhanced codes here"},
		{"554 5.7.1 connections from 203.0.113.9 are not accepted", "554 5.7.1 connections from IP are not accepted"},
		{"451 4.4.1 dial tcp 192.0.2.1:25: connection refused", "451 4.4.1 dial tcp IP: connection refused"},
		{"451 4.4.1 dial tcp [2001:db8::25]:25: refused", "451 4.4.1 dial tcp IP: refused"},
		{"554 from 2001:db8::1: blocked", "554 from IP: blocked"},
		{"554 from [::1] and ::ffff:192.0.2.1", "554 from IP and IP"},
		{"554 5.7.1 <eve@elsewhere.example>: Relay access denied", "554 5.7.1 <ADDR>: Relay access denied"},
		{"550 5.1.1 user bob@example.net unknown", "550 5.1.1 user ADDR unknown"},
		{"421 4.7.0 try again at 10:00:00", "421 4.7.0 try again at 10:00:00"},
		{"451 4.3.0 message 6740A1F3C2D94E1A\tdeferred  twice", "451 4.3.0 message ID deferred twice"},
		{"550 5.7.1 see https://example.com/id=ABC123", "550 5.7.1 see https://example.com/id=ID"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := NormaliseReply(tt.in); got != tt.want {
			t.Errorf("NormaliseReply(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestSeveralFilesAndTop(t *testing.T) {
	a := NewAggregator()
	day1 := "2026-11-22T01:00:00.000Z accept id=A client=c from=<x@a.example> nrcpt=1 size=10 auth=-\n" +
		"2026-11-22T01:00:00.000Z accept id=B client=c from=<y@a.example> nrcpt=1 size=10 auth=-\n"
	day2 := "2026-11-23T01:00:00.000Z accept id=C client=c from=<x@A.EXAMPLE> nrcpt=1 size=30 auth=-" // no final newline
	for _, in := range []string{day1, day2} {
		if err := a.Read(strings.NewReader(in)); err != nil {
			t.Fatal(err)
		}
	}
	rep := a.Report(1)
	want := []Sender{{Sender: "x@a.example", Messages: 2, Bytes: 40}}
	if d := cmp.Diff(want, rep.Senders); d != "" {
		t.Errorf("top 1 senders (-want +got):\n%s", d)
	}
	if rep.Hours[1].Received != 3 || rep.First.Day() != 22 || rep.Last.Day() != 23 {
		t.Errorf("hours[1] = %+v, first %v, last %v", rep.Hours[1], rep.First, rep.Last)
	}
	if n := len(a.Report(0).Senders); n != 2 {
		t.Errorf("Report(0) has %d senders; want all 2", n)
	}
}

func TestLongLines(t *testing.T) {
	var in bytes.Buffer
	in.WriteString("2026-11-22T01:00:00.000Z connect client=a listener=b\n")
	in.WriteString("2026-11-22T01:00:00.000Z reject client=a stage=rcpt reply=\"" + strings.Repeat("x", 200<<10) + "\"\n")
	in.WriteString(strings.Repeat("y", maxLine+10) + "\n")
	in.WriteString("2026-11-22T01:00:01.000Z connect client=a listener=b\n")
	rep, err := Aggregate(&in, 10)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Lines != 4 || rep.Skipped != 1 || rep.Connections != 2 || rep.Rejected.Total != 1 {
		t.Errorf("lines %d, skipped %d, connections %d, rejected %d; want 4, 1, 2, 1",
			rep.Lines, rep.Skipped, rep.Connections, rep.Rejected.Total)
	}
}

func TestEmpty(t *testing.T) {
	rep, err := Aggregate(strings.NewReader(""), 10)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(rep)
	if !strings.Contains(string(b), `"senders":[]`) || strings.Contains(string(b), `"first"`) {
		t.Errorf("empty report = %s; want empty lists and no times", b)
	}
}
