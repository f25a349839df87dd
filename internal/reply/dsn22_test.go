package reply

import (
	"slices"
	"testing"
)

// TestDsn22AddCensors: a server's reply keeps printable ASCII and valid
// UTF-8; control characters, DEL and octets outside a UTF-8 character
// become '?', as Postfix's smtp_chat_resp censors them.
func TestDsn22AddCensors(t *testing.T) {
	for in, want := range map[string]string{
		"550 5.1.1 no such user":            "5.1.1 no such user",
		"550 5.1.1 j\u00fcrgen unbekannt":   "5.1.1 j\u00fcrgen unbekannt",
		"550 5.1.1 caf\xe9 \x00\x1b[2J\x07": "5.1.1 caf? ??[2J?",
		"550 5.1.1 a\tb\x7fc\r":             "5.1.1 a?b?c?",
		"550 5.1.1 cut \xc3":                "5.1.1 cut ?",
	} {
		var r Reply
		if _, err := r.Add(in); err != nil {
			t.Fatalf("Add(%q): %v", in, err)
		}
		if r.Lines[0] != want || r.Code != 550 || r.Enhanced != "5.1.1" {
			t.Errorf("Add(%q): code %d enhanced %q line %q; want 550 5.1.1 %q", in, r.Code, r.Enhanced, r.Lines[0], want)
		}
	}
}

// TestDsn22Clip: Clip keeps the first n octets of a reply's text, whole
// lines first, the last one cut at a character's start, and at least the
// first line's start.
func TestDsn22Clip(t *testing.T) {
	r := Reply{Code: 550, Enhanced: "5.1.1", Lines: []string{"5.1.1 abc", "5.1.1 d\u00e9f", "5.1.1 ghi"}}
	for n, want := range map[int][]string{
		100: {"5.1.1 abc", "5.1.1 d\u00e9f", "5.1.1 ghi"},
		9:   {"5.1.1 abc"},
		17:  {"5.1.1 abc", "5.1.1 d"}, // not inside the two octets of é
		18:  {"5.1.1 abc", "5.1.1 d\u00e9"},
		4:   {"5.1."},
	} {
		got := r.Clip(n)
		if !slices.Equal(got.Lines, want) || got.Code != 550 || got.Enhanced != "5.1.1" {
			t.Errorf("Clip(%d) = %d %q %q; want 550 5.1.1 %q", n, got.Code, got.Enhanced, got.Lines, want)
		}
	}
	if len(r.Lines) != 3 || r.Lines[2] != "5.1.1 ghi" {
		t.Errorf("Clip changed the reply it was called on: %q", r.Lines)
	}
}
