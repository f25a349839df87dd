package maillog

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// TestAud24DeliverTransport: a delivery through a transport with a log
// name ends with transport=NAME, after every key the line had before; a
// delivery without one has no transport key.
func TestAud24DeliverTransport(t *testing.T) {
	var b bytes.Buffer
	l := NewWithClock(&b, fixedClock())
	d := Delivery{ID: "6740A1F3C2D94E1A", To: "bob@example.net", Relay: "smarthost:25", Result: Sent,
		Delay: time.Second, Attempt: 1, Reply: "250 2.0.0 Ok", Client: "127.0.0.1:40000"}
	l.Deliver(d)
	d.Transport = "relay-zombig-name"
	l.Deliver(d)
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d lines; want 2:\n%s", len(lines), b.String())
	}
	if strings.Contains(lines[0], "transport=") {
		t.Errorf("no log name, yet %q", lines[0])
	}
	if lines[1] != lines[0]+" transport=relay-zombig-name" {
		t.Errorf("with a log name:\n%s\nwant the first line plus transport=relay-zombig-name:\n%s", lines[1], lines[0])
	}
}
