package queue

import (
	"slices"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestDsn22SelectNotices: the listing prints a notice's sender as <> and
// every address in angle brackets, as the mail log does. An administrator
// who copies that into --sender or --match ("queue delete --sender '<>'",
// to drop the queued bounces, as with mailq | grep MAILER-DAEMON) selected
// nothing: the filters only looked at the bare addresses, and an empty
// --sender means every sender, so no filter could pick the null sender.
func TestDsn22SelectNotices(t *testing.T) {
	s, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	plain := addMessage(t, s, "alice@example.com", []string{"bob@example.net"}, false, nil, spool.Ready)
	notice := addMessage(t, s, "", []string{"alice@example.com"}, false,
		func(e *spool.Envelope) { e.Bounce = true }, spool.Ready)

	for _, tc := range []struct {
		f    Filter
		want []string
	}{
		{Filter{Sender: "<>"}, []string{notice}},
		{Filter{Sender: "<alice@example.com>"}, []string{plain}},
		{Filter{Recipient: "<alice@example.com>"}, []string{notice}},
		{Filter{Sender: "alice@"}, []string{plain}},
	} {
		msgs, err := List(s, tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if got := ids(msgs); !slices.Equal(got, tc.want) {
			t.Errorf("List(%+v) = %v; want %v", tc.f, got, tc.want)
		}
	}
	for match, want := range map[string][]string{"<>": {notice}, "<bob@example.net>": {plain}} {
		got, err := Select(s, Delete, Selector{Match: match})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Select(delete, --match %q) = %v; want %v", match, got, want)
		}
	}
}
