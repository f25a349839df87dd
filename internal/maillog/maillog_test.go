package maillog

import (
	"bytes"
	"flag"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

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
	l.Connect("127.0.0.1:40000", "", "127.0.0.1:25")
	l.Connect("203.0.113.7:40002", "mx.example.net", "127.0.0.1:25")
	l.Reject("203.0.113.9:5000", "connect", "554 5.7.1 relaykeeper: remote clients are not allowed")
	l.Accept("6740A1F3C2D94E1A", "127.0.0.1:40000", "alice@example.com", 2, 1234, "", "<20261122100000.4XyZ@mail.example.com>")
	l.Accept("6740A1F3C2D94E1B", "127.0.0.1:40000", "", 1, 10, "bob", `<a b"c=d@x> client=192.0.2.1`)
	l.Deliver(Delivery{ID: "6740A1F3C2D94E1A", To: "bob@example.net", Relay: "smarthost:25", Result: Sent,
		Delay: 1500 * time.Millisecond, Attempt: 1, Reply: "250 2.0.0 Ok: queued as 4XyZ", Client: "127.0.0.1:40000"})
	l.Deliver(Delivery{ID: "6740A1F3C2D94E1A", To: "carol@example.org", Relay: "smarthost:25", Result: Deferred,
		Delay: 2 * time.Second, Attempt: 1, Reply: `451-4.3.0 "busy" 451 4.3.0 try later`, Client: "127.0.0.1:40000"})
	l.Proxy("6740A1F3C2D94E1C", "127.0.0.1:40001", "a@b", 1, 99, "smarthost:25", Bounced, "550 5.1.1 no such user", "<p.1@client.example>")
	l.Disconnect("127.0.0.1:40000", 2)
	l.Quarantine("6740A1F3C2D94E1D", "receipt never completed")
	l.AcceptBack("6740A1F3C2D94E1E", "127.0.0.1:40000", "alice@example.com", 1, 1300, "127.0.0.1:10026", "")
	l.Auth("127.0.0.1:40002", "PLAIN", "bob")
	l.Abandon("6740A1F3C2D94E1F", "127.0.0.1:40000", "alice@example.com", "exit:/usr/local/bin/copy")
	l.Discard("6740A1F3C2D94E20", "127.0.0.1:40000", "alice@example.com", 2, "discard action", "")
	l.Discard("6740A1F3C2D94E21", "", "", 1, "undeliverable notice", "550 5.1.1 no such user")
	l.Hold("6740A1F3C2D94E22", "127.0.0.1:40000", "alice@example.com", "held at receipt")
	l.Hold("6740A1F3C2D94E23", "192.0.2.7:40100", "spam@example.org", "client banned")
	l.Notice("6740A1F3C2D94E24", "6740A1F3C2D94E1A", "failure", "alice@example.com", 1)
	l.Notice("6740A1F3C2D94E26", "6740A1F3C2D94E24", "2bounce", "postmaster@relay.example", 1)
	l.Pace("smtp/[smtp.gmail.com]:587", "pace", time.Date(2026, 11, 22, 3, 6, 8, 0, time.UTC), 5*time.Second, 1,
		"421-4.7.28 Gmail has detected an unusual rate of email originating from your IP address 421 4.7.28 ... - gsmtp")
	l.Pace("rcpt:bob@gmail.com", "pace-recipient", time.Date(2026, 11, 22, 3, 6, 8, 0, time.UTC), 5*time.Second, 1,
		"450 4.2.1 The user you are trying to contact is receiving mail too quickly.")
	l.Resume("smtp/[smtp.gmail.com]:587")
	l.DestinationAlert("smtp/[smtp.gmail.com]:587", "smtp.gmail.com[142.250.102.108]:587", "535 5.7.8 Username and Password not accepted.")
	gmail := "550-5.7.1 [192.0.2.1 12] Our system has detected that this message is 550 5.7.1 likely unsolicited mail. x - gsmtp"
	l.Ban("192.0.2.7", "192.0.2.7/32", "6740A1F3C2D94E23", time.Date(2026, 11, 22, 14, 0, 10, 0, time.UTC), "gmail-unsolicited", gmail)
	l.Block("spam.example", "6740A1F3C2D94E25", "192.0.2.8", "gmail-domain-reputation", true, "550 5.7.1 ... low reputation of the sending domain")
	l.Encapsulate("6740A1F3C2D94E26", "6740A1F3C2D94E27", "carol@gmail.com", "127.0.0.1:40000", "gmail-dmarc",
		"550 5.7.26 Unauthenticated email from example.com is not accepted")
	l.Report("6740A1F3C2D94E28", "127.0.0.1:40000", "alice@example.com", []string{"d@gmail.com", "e@gmail.com"}, "", "no rule knows this reply", "550 5.0.0 odd")
	l.Spare("6740A1F3C2D94E29", "10.0.0.5", "gmail-unsolicited", "welcomelisted")
	l.AdminAlert("6740A1F3C2D94E2A", "127.0.0.1:40000", "gmail-sending-limit", "550 5.4.5 Daily user sending limit exceeded.")
	l.PopDelete("6740A1F3C2D94E2B", "127.0.0.1:40003", "alice")
	l.Companion("would-ban", "client", "203.0.113.7", "queue", "4XyZ", "client_name", "mx.spam.test", "rule", "gmail-unsolicited")
	l.Unban("192.0.2.7", "192.0.2.7/32", time.Date(2026, 11, 22, 14, 0, 10, 0, time.UTC), "expired")

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

// TestNoRawControlCharacters: whatever an event name, a key or a value
// holds, a line is one line of printable text that parses back.
func TestNoRawControlCharacters(t *testing.T) {
	for _, tt := range [][3]string{
		{"ban\nfake 2026-01-01T00:00:00Z ban client=1.2.3.4", "client", "5.6.7.8"},
		{"hold", "client\r\n", "x"},
		{"", "", "a\nb\x00c\x1b[31m"},
		{"Ünicode", "k=v", "\u2028"},
		{"accept", "from", "<x\u009b2J\u009b1A\u0085y@example.org>"},
		{"accept", "from", "<x\x9b31m@example.org>"},
		{"accept", "from", "<\u00e9l\u00e8ve@\u00e9cole.example>"},
	} {
		var b bytes.Buffer
		NewWithClock(&b, fixedClock()).event(tt[0], tt[1], tt[2])
		checkOneLine(t, b.String())
	}
}

func checkOneLine(t *testing.T, out string) {
	t.Helper()
	body, ok := strings.CutSuffix(out, "\n")
	if !ok || !utf8.ValidString(body) || strings.ContainsFunc(body, func(r rune) bool { return r != ' ' && !strconv.IsPrint(r) }) {
		t.Fatalf("written %q: not one line of printable text", out)
	}
	if _, err := Parse(body); err != nil {
		t.Fatalf("written %q does not parse: %v", out, err)
	}
}

func FuzzWrite(f *testing.F) {
	f.Add("ban", "client", "1.2.3.4")
	f.Add("a\nb", "k\x00", "v\r\n")
	f.Fuzz(func(t *testing.T, event, key, value string) {
		var b bytes.Buffer
		NewWithClock(&b, fixedClock()).event(event, key, value)
		checkOneLine(t, b.String())
		e, _ := Parse(b.String())
		if e.Get(word(key)) != value {
			t.Fatalf("value %q read back as %q", value, e.Get(word(key)))
		}
	})
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
		l.event(e.Event, kv...)
		checkOneLine(t, b.String())
		e2, err := Parse(b.String())
		if err != nil {
			t.Fatalf("re-parse %q: %v", b.String(), err)
		}
		if e2.Event != e.Event || !cmp.Equal(e.Fields, e2.Fields) {
			t.Fatalf("fields %v; after round trip %v", e.Fields, e2.Fields)
		}
	})
}
