package policy

import (
	"strings"
	"testing"
)

// TestFuzz26LongItemClipped: a restriction list item of a megabyte (a
// file pasted into the config by mistake) is quoted clipped in the error,
// not whole.
func TestFuzz26LongItemClipped(t *testing.T) {
	item := strings.Repeat("x", 1<<20)
	_, err := New(Options{Relay: []string{"permit_mynetworks", item}})
	if err == nil {
		t.Fatal("New with a megabyte item = nil error")
	}
	if msg := err.Error(); len(msg) > 1000 || !strings.Contains(msg, `policy.relay_restrictions: "xxx`) || !strings.Contains(msg, `...": unknown restriction`) {
		t.Errorf("error of %d bytes: %.300q; want the item clipped", len(msg), msg)
	}
}
