package queue

import (
	"strings"
	"testing"
)

// TestRevDSN4UnknownHint: a Postfix administrator's "queue requeue" (for
// postsuper -r) was only an unknown command; it now says what to do.
func TestRevDSN4UnknownHint(t *testing.T) {
	if h := UnknownHint("requeue"); !strings.Contains(h, "queue flush") {
		t.Errorf("UnknownHint(requeue) = %q; want it to point at queue flush", h)
	}
	if h := UnknownHint("bogus"); h != "" {
		t.Errorf("UnknownHint(bogus) = %q; want none", h)
	}
}
