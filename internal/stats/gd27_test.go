package stats

import (
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestGd27HeldDiscarded: the grand totals counted every accepted message
// but left out those held (a banned client's, a hold action) and those
// discarded (DISCARD): they were "other events", and an administrator
// could not tell where the received mail went.
func TestGd27HeldDiscarded(t *testing.T) {
	log := `2026-11-23T09:25:00.000Z accept id=6741F3A0C2D94E30 client=127.0.0.1:40200 from=<spam@example.org> nrcpt=1 size=400 auth=-
2026-11-23T09:25:00.000Z hold id=6741F3A0C2D94E30 client=127.0.0.1:40200 from=<spam@example.org> reason="client banned"
2026-11-23T09:26:00.000Z accept id=6741F3A0C2D94E31 client=127.0.0.1:40201 from=<spam@example.org> nrcpt=2 size=400 auth=-
2026-11-23T09:26:00.000Z discard id=6741F3A0C2D94E31 client=127.0.0.1:40201 from=<spam@example.org> nrcpt=2 reason="header_checks" reply="250 2.0.0 Ok"
`
	rep, err := Aggregate(strings.NewReader(log), 10)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Held != 1 || rep.Discarded != 1 || rep.OtherEvents != 0 {
		t.Errorf("held %d, discarded %d, other events %d; want 1, 1, 0", rep.Held, rep.Discarded, rep.OtherEvents)
	}
	var sb strings.Builder
	if err := Summarise(&sb, []string{"-"}, strings.NewReader(log), 10, false); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"      1   held\n", "      1   discarded\n"} {
		if !strings.Contains(sb.String(), want) {
			t.Errorf("report:\n%s\nwant %q", sb.String(), want)
		}
	}
}

// TestGd27SummariseWriteError: "relaykeeper stats --json > /dev/full"
// exited 0 with nothing written: WriteJSON's error was dropped.
func TestGd27SummariseWriteError(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Skip("no /dev/full")
	}
	defer full.Close()
	for _, asJSON := range []bool{true, false} {
		err := Summarise(full, []string{"-"}, strings.NewReader(""), 10, asJSON)
		if err == nil || !strings.Contains(err.Error(), "writing the report") || !errors.Is(err, errNoSpace()) {
			t.Errorf("Summarise(json %v) to /dev/full = %v; want an error writing the report", asJSON, err)
		}
	}
}

func errNoSpace() error { return syscall.ENOSPC }
