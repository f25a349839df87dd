package queue

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// The command's tests (cmd/relaykeeper) pin the whole output against a
// real spool; these pin the choices the printers make on their own.

func TestListingEmpty(t *testing.T) {
	for _, tc := range []struct {
		filtered bool
		want     string
	}{
		{false, "Mail queue is empty\n"},
		{true, "-- 0 Kbytes in 0 requests.\n"},
	} {
		var b bytes.Buffer
		NewListing("/spool", nil, nil).WriteText(&b, time.Now(), tc.filtered)
		if got := b.String(); got != tc.want {
			t.Errorf("WriteText(filtered=%v) = %q; want %q", tc.filtered, got, tc.want)
		}
	}
}

func TestReportWriteTextRelay(t *testing.T) {
	for _, tc := range []struct {
		act        Action
		relay      RelayNotice
		want, warn string
	}{
		{Hold, RelayNotice{}, "hold: 0 done.\n", ""},
		{Retry, RelayNotice{Asked: true, Notified: true, PID: 7}, "retry: 0 done.\nrelay (pid 7) notified: it re-reads the spool now.\n", ""},
		{Delete, RelayNotice{Asked: true}, "delete: 0 done.\nno relay is running on /s.\n", ""},
		{Retry, RelayNotice{Asked: true}, "retry: 0 done.\nno relay is running on /s; the messages go when it starts.\n", ""},
		{Flush, RelayNotice{Asked: true, Error: "x"}, "flush: 0 done.\n", "relaykeeper queue: warning: relay not notified: x\n"},
	} {
		var out, warn bytes.Buffer
		Report{Relay: tc.relay}.WriteText(&out, &warn, tc.act, "/s")
		if out.String() != tc.want || warn.String() != tc.warn {
			t.Errorf("%s %+v: WriteText = %q, %q; want %q, %q", tc.act, tc.relay, out.String(), warn.String(), tc.want, tc.warn)
		}
	}
}

func TestParseStates(t *testing.T) {
	if sts, err := ParseStates("Ready, held"); err != nil || len(sts) != 2 {
		t.Errorf("ParseStates(%q) = %v, %v; want two states", "Ready, held", sts, err)
	}
	if _, err := ParseStates("ready,sleeping"); err == nil {
		t.Errorf("ParseStates(%q) = nil error; want one", "ready,sleeping")
	}
}

func TestWritePID(t *testing.T) {
	s, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := WritePID(s); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(s.Dir(), PIDFile))
	if want := strconv.Itoa(os.Getpid()) + "\n"; err != nil || string(b) != want {
		t.Errorf("pid file = %q, %v; want %q", b, err, want)
	}
	RemovePID(s)
	if _, err := os.Stat(filepath.Join(s.Dir(), PIDFile)); err == nil {
		t.Error("RemovePID left the pid file")
	}
}

// TestRemovePIDOfAnother: a relay that stops removes the spool's pid file
// only while it names that relay. A second relay started on the same spool
// has the file now; removing it would leave the running one unnotified, and
// queue commands would say that no relay runs.
func TestRemovePIDOfAnother(t *testing.T) {
	s, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(s.Dir(), PIDFile)
	other := strconv.Itoa(os.Getppid()) + "\n" // a live process, not this one
	if err := os.WriteFile(path, []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WritePID(s); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != other+strconv.Itoa(os.Getpid())+"\n" {
		t.Errorf("after WritePID, pid file = %q, %v; want both relays", b, err)
	}
	RemovePID(s)
	if b, err := os.ReadFile(path); err != nil || string(b) != other {
		t.Errorf("after RemovePID, pid file = %q, %v; want the other relay's %q kept", b, err, other)
	}
}
