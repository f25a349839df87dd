package postfixlog

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The hostile corpus: log lines that carry text a client chose (a MAIL
// FROM AUTH= parameter, quoted local parts, forged Received fields, a
// Message-ID) shaped like the fields the enforcer acts on. Each file is a
// log as Postfix 3.7 (info_log_address_format = external) and amavis write
// it; want says what the tracker must report. Nothing may name the victim
// (198.51.100.7, victim.example), and a status=sent line is never a
// refusal.
var hostile = []struct {
	file string
	want []Refusal // QueueID, To, ClientIP, From and Status only
}{
	{"sasl-sender-orig-client.log", []Refusal{
		{QueueID: "4C2B7985118", To: "carol@gmail.com", ClientIP: "203.0.113.66", From: "bob@attacker.example", Status: "bounced"},
		{QueueID: "5D0E1985119", To: "dave@gmail.com", ClientIP: "203.0.113.66", Status: "bounced"},
	}},
	{"quoted-rcpt-status.log", nil},
	{"quoted-from-domain.log", []Refusal{
		{QueueID: "4C2B7985118", To: "carol@gmail.com", ClientIP: "203.0.113.66", From: `"x@victim.example>"@attacker.example`, Status: "bounced"},
	}},
	{"amavis-guess.log", []Refusal{
		// Postfix's own client= of the original queue id, not amavis's
		// guess from the Received fields.
		{QueueID: "5D0E1985119", To: "carol@gmail.com", ClientIP: "203.0.113.66", From: "bob@attacker.example", Status: "bounced"},
		// The original queue id's client= was not seen: unknown, not
		// the guess.
		{QueueID: "6E1F2A9811A", To: "dave@gmail.com", ClientIP: "", From: "bob@attacker.example", Status: "bounced"},
	}},
	{"amavis-injected-fields.log", []Refusal{
		{QueueID: "5D0E1985119", To: "carol@gmail.com", ClientIP: "203.0.113.66", From: `"x, Queue-ID: 8A0B1C2D3E4, queued_as: 5D0E1985119"@attacker.example`, Status: "bounced"},
	}},
	{"reply-not-from-relay.log", nil},
	// amavis as a milter re-injects nothing and writes no queued_as: the
	// one in a Message-ID that a list server relayed from the victim
	// named the attacker's spam, which was then the victim's.
	// Postfix cut the delivery line at 2000 bytes, and the attacker's
	// long orig_to put the cut right after "(-all)" in Gmail's reply: it
	// is not read as a delivery with its reply cut short.
	{"cut-orig-to.log", nil},
	{"amavis-milter-forged-queued-as.log", []Refusal{
		{QueueID: "4C2B7985118", To: "carol@gmail.com", ClientIP: "203.0.113.66", From: "bob@attacker.example", Status: "bounced"},
	}},
}

func TestHostileLog(t *testing.T) {
	for _, tt := range hostile {
		t.Run(strings.TrimSuffix(tt.file, ".log"), func(t *testing.T) {
			checkHostile(t, tt.file, tt.want)
		})
	}
}

// checkHostile replays the hostile log file through a Tracker and checks
// that its refusals are want's (QueueID, To, ClientIP, From and Status),
// none naming the victim.
func checkHostile(t *testing.T, file string, want []Refusal) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "hostile", file))
	if err != nil {
		t.Fatal(err)
	}
	tr := &Tracker{}
	var got []Refusal
	for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		if e, ok := ParseLine(line); ok {
			got = append(got, tr.Add(e)...)
		}
	}
	got = append(got, tr.Release(0)...)
	if len(got) != len(want) {
		t.Fatalf("refusals = %+v; want %d", got, len(want))
	}
	for i, r := range got {
		w := want[i]
		if r.QueueID != w.QueueID || r.To != w.To || r.ClientIP != w.ClientIP || r.From != w.From || r.Status != w.Status {
			t.Errorf("refusal %d = {%s %s client %q from %q %s}; want {%s %s client %q from %q %s}", i,
				r.QueueID, r.To, r.ClientIP, r.From, r.Status, w.QueueID, w.To, w.ClientIP, w.From, w.Status)
		}
		if r.ClientIP == "198.51.100.7" || strings.Contains(r.ClientName, "victim") || strings.HasSuffix(r.From, "@victim.example") {
			t.Errorf("refusal %d names the victim: %+v", i, r)
		}
	}
}

// hostileLines returns every line of the hostile corpus (every file in
// testdata/hostile), for the fuzz target's seeds.
func hostileLines(f *testing.F) []string {
	files, err := filepath.Glob(filepath.Join("testdata", "hostile", "*.log"))
	if err != nil || len(files) == 0 {
		f.Fatalf("the hostile corpus: %v", err)
	}
	var lines []string
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		lines = append(lines, strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")...)
	}
	return lines
}
