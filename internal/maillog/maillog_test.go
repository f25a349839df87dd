package maillog

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files")

func fixedClock() func() time.Time {
	t := time.Date(2026, 11, 22, 10, 0, 0, 123e6, time.UTC)
	return func() time.Time { return t }
}

// TestGolden pins the format of every event: a change here breaks
// operators' greps and fail2ban filters, so it must be deliberate.
func TestGolden(t *testing.T) {
	var b bytes.Buffer
	l := NewWithClock(&b, fixedClock())
	l.Connect("127.0.0.1:40000", "127.0.0.1:25")
	l.Reject("203.0.113.9:5000", "connect", "554 5.7.1 relaykeeper: remote clients are not allowed")
	l.Accept("6740A1F3C2D94E1A", "127.0.0.1:40000", "alice@example.com", 2, 1234, "")
	l.Accept("6740A1F3C2D94E1B", "127.0.0.1:40000", "", 1, 10, "bob")
	l.Deliver(Delivery{ID: "6740A1F3C2D94E1A", To: "bob@example.net", Relay: "smarthost:25", Result: Sent,
		Delay: 1500 * time.Millisecond, Attempt: 1, Reply: "250 2.0.0 Ok: queued as 4XyZ", Client: "127.0.0.1:40000"})
	l.Deliver(Delivery{ID: "6740A1F3C2D94E1A", To: "carol@example.org", Relay: "smarthost:25", Result: Deferred,
		Delay: 2 * time.Second, Attempt: 1, Reply: `451-4.3.0 "busy" 451 4.3.0 try later`, Client: "127.0.0.1:40000"})
	l.Proxy("6740A1F3C2D94E1C", "127.0.0.1:40001", "a@b", 1, 99, "smarthost:25", Bounced, "550 5.1.1 no such user")
	l.Disconnect("127.0.0.1:40000", 2)
	l.Quarantine("6740A1F3C2D94E1D", "receipt never completed")

	golden := "testdata/events.golden"
	if *update {
		os.WriteFile(golden, b.Bytes(), 0o644)
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(string(want), b.String()); d != "" {
		t.Errorf("mail log (-want +got):\n%s", d)
	}

	// Every line the logger writes parses back to what was logged.
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		e, err := Parse(line)
		if err != nil {
			t.Errorf("Parse(%q) = %v", line, err)
			continue
		}
		if e.Event == "delivery" && e.Get("to") == "<carol@example.org>" {
			if got, want := e.Get("reply"), `451-4.3.0 "busy" 451 4.3.0 try later`; got != want {
				t.Errorf("reply = %q; want %q", got, want)
			}
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"", "nonsense", "2026-11-22T10:00:00.123Z", `2026-11-22T10:00:00.123Z x k="open`,
		"2026-11-22T10:00:00.123Z x novalue",
	} {
		if e, err := Parse(in); err == nil {
			t.Errorf("Parse(%q) = %+v, nil; want error", in, e)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(`2026-11-22T10:00:00.123Z delivery id=X to=<a@b> reply="250 ok" n=1`)
	f.Add(`2026-11-22T10:00:00.123Z reject client=1.2.3.4:5 reply="a\"b\\c"`)
	f.Fuzz(func(t *testing.T, s string) {
		e, err := Parse(s)
		if err != nil {
			return
		}
		// Re-writing what was parsed must parse to the same fields.
		var b bytes.Buffer
		l := NewWithClock(&b, func() time.Time { return e.Time })
		var kv []string
		for _, k := range e.Keys {
			kv = append(kv, k, e.Fields[k])
		}
		l.Event(e.Event, kv...)
		e2, err := Parse(b.String())
		if err != nil {
			t.Fatalf("re-parse %q: %v", b.String(), err)
		}
		if !cmp.Equal(e.Fields, e2.Fields) {
			t.Fatalf("fields %v; after round trip %v", e.Fields, e2.Fields)
		}
	})
}
