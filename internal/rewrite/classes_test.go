package rewrite

import (
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestCanonicalClasses: canonical_classes and its two forms choose which
// addresses each kind of table maps, as postconf(5) says; empty lists map
// every class; a class a list cannot hold is refused under its key.
func TestCanonicalClasses(t *testing.T) {
	set := &table.Set{}
	maps := Maps{Canonical: []string{"inline:{ c@x.local=c@example.com }"},
		Sender:    []string{"inline:{ s@x.local=s@example.com }"},
		Recipient: []string{"inline:{ r@x.local=r@example.com }"}}
	msg := "From: c@x.local, s@x.local\r\nTo: c@x.local, r@x.local\r\n\r\nc@x.local\r\n"
	for _, tc := range []struct {
		name               string
		classes            Classes
		from, rcptC, rcptR string
		header             string
	}{
		{"defaults", Classes{}, "s@example.com", "c@example.com", "r@example.com",
			"From: c@example.com, s@example.com\r\nTo: c@example.com, r@example.com\r\n"},
		{"envelope only", Classes{Canonical: []string{"envelope_sender", "envelope_recipient"}},
			"s@example.com", "c@example.com", "r@example.com",
			"From: c@x.local, s@example.com\r\nTo: c@x.local, r@example.com\r\n"},
		{"sender maps for the header only", Classes{Sender: []string{"header_sender"}},
			"s@x.local", "c@example.com", "r@example.com",
			"From: c@example.com, s@example.com\r\nTo: c@example.com, r@example.com\r\n"},
		{"recipient maps for the envelope only", Classes{Recipient: []string{"envelope_recipient"}},
			"s@example.com", "c@example.com", "r@example.com",
			"From: c@example.com, s@example.com\r\nTo: c@example.com, r@x.local\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := maps
			m.Classes = tc.classes
			c, err := Open(set, m, "")
			if err != nil {
				t.Fatal(err)
			}
			if got := c.SenderAddr("s@x.local"); got != tc.from {
				t.Errorf("SenderAddr = %q; want %q", got, tc.from)
			}
			if got := c.RecipientAddr("c@x.local"); got != tc.rcptC {
				t.Errorf("RecipientAddr(c) = %q; want %q", got, tc.rcptC)
			}
			if got := c.RecipientAddr("r@x.local"); got != tc.rcptR {
				t.Errorf("RecipientAddr(r) = %q; want %q", got, tc.rcptR)
			}
			if got := writeInSteps(t, c, msg, 5); !strings.HasPrefix(got, tc.header) {
				t.Errorf("header:\n%q\nwant it to start\n%q", got, tc.header)
			}
		})
	}
	_, err := Open(set, Maps{Canonical: maps.Canonical, Classes: Classes{Canonical: []string{"envelope_sender", "header"},
		Sender: []string{"envelope_recipient"}}}, "")
	if err == nil {
		t.Fatal("Open with bad classes: no error")
	}
	for _, want := range []string{`rewrite.canonical_classes: "header"`, `rewrite.sender_canonical_classes: "envelope_recipient"; want envelope_sender or header_sender`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q; want it to say %q", err, want)
		}
	}
}
