package stats

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// FuzzRead reads arbitrary bytes as a mail log, the file the operator
// points "relaykeeper stats" at: no panic, every line is counted, and the
// report writes as JSON and as text whatever the lines said.
func FuzzRead(f *testing.F) {
	sample, err := os.ReadFile("testdata/mail.log")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sample)
	for _, s := range []string{
		"2026-11-22T09:00:01.500Z delivery id=A to=<b@example.net> relay=x:25 result=sent delay=NaN attempt=1 reply=\"250 ok\"\n",
		"2026-11-22T09:00:01.500Z delivery id=A to=<b@example.net> relay=x:25 result=sent delay=+Inf attempt=1 reply=\"250 ok\"\n",
		"2026-11-22T09:00:01.500Z delivery id=A to=<b@example.net> relay=x:25 result=sent delay=-1e308 attempt=1 reply=\"250 ok\"\n",
		"2026-11-22T09:00:00.200Z accept id=A client=127.0.0.1:1 from=<\xff\x00> nrcpt=1 size=-9223372036854775808 auth=-\n",
		"2026-11-22T09:00:00.200Z accept id=A client=127.0.0.1:1 from=<a@b> nrcpt=1 size=9223372036854775807 auth=-\n" +
			"2026-11-22T09:00:00.200Z accept id=B client=127.0.0.1:1 from=<a@b> nrcpt=1 size=9223372036854775807 auth=-\n",
		"{\"time\":\"2026-11-22T09:00:00Z\",\"event\":\"connect\",\"client\":\"127.0.0.1:1\"}\n",
		"2026-11-22T09:00:00.200Z proxy client=192.0.2.1:1 result=bounced nrcpt=9223372036854775807 reply=\"550 5.7.1 no\"\n" +
			"2026-11-22T09:00:00.300Z proxy client=192.0.2.1:1 result=bounced nrcpt=9223372036854775807 reply=\"550 5.7.1 no\"\n" +
			"2026-11-22T09:00:00.400Z proxy client=192.0.2.1:1 result=sent nrcpt=2 reply=\"250 ok\"\n",
		"9999-12-31T23:59:59.999Z connect client=x\r\n0000-01-01T00:00:00Z connect client=y\n",
		"\n\n \r\n", "no newline at the end", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, log []byte) {
		a := NewAggregator()
		if err := a.Read(bytes.NewReader(log)); err != nil {
			t.Fatalf("Read: %v", err)
		}
		r := a.Report(10)
		if r.Lines < 0 || r.Skipped > r.Lines || r.Lines > bytes.Count(log, []byte("\n"))+1 {
			t.Fatalf("%d lines, %d skipped, from %d newlines", r.Lines, r.Skipped, bytes.Count(log, []byte("\n")))
		}
		if r.Received.Bytes < 0 {
			t.Fatalf("received %d bytes", r.Received.Bytes)
		}
		for _, s := range r.Senders {
			if s.Bytes < 0 {
				t.Fatalf("sender %q: %d bytes", s.Sender, s.Bytes)
			}
		}
		for _, d := range r.RecipientDomains {
			if !(d.AvgDelay >= 0 && d.MaxDelay >= 0) {
				t.Fatalf("domain %q: delays %v, %v", d.Domain, d.AvgDelay, d.MaxDelay)
			}
		}
		for _, c := range r.RejectionRates {
			if c.Replies < c.Refused || c.Refused < 0 || !(c.Rate >= 0 && c.Rate <= 1) {
				t.Fatalf("client %q: %d of %d refused, rate %v", c.Client, c.Refused, c.Replies, c.Rate)
			}
		}
		var out bytes.Buffer
		if err := WriteJSON(&out, r); err != nil {
			t.Fatalf("WriteJSON: %v", err)
		}
		out.Reset()
		WriteText(&out, r)
		if !strings.Contains(out.String(), "\n") {
			t.Fatalf("text report %q", out.String())
		}
	})
}
