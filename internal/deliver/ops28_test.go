package deliver

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestOps28RunOnceSaysWhatItLeaves: a one-off run (--as-client from cron
// or ip-up, E-MailRelay's way) says how many messages it left alone by
// design, held ones and those recovery quarantined; before, its line
// counted only what it tried, so "1 message(s): 1 delivered" and exit
// status 0 passed over a held message and a quarantined one in silence.
// The exit status stays 0: they were not to be sent.
func TestOps28RunOnceSaysWhatItLeaves(t *testing.T) {
	up := startUpstream(t)
	sp, s, _, _ := setup(t, up.addr, "ok@example.net")
	w, err := sp.Create(t0)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: held\r\n\r\nbody\r\n")
	if err := w.Prepare(&spool.Envelope{From: "a@example.com", Arrival: t0, Client: "127.0.0.1:1",
		Recipients: []spool.Recipient{{Addr: "held@example.net", Status: spool.Pending}}}); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(true); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sp.QuarantinePath(), "6B17287AA9285EA4.content"), []byte("x\r\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	sum, err := s.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Sent != 1 || sum.NotDelivered() != 0 || sum.Err() != nil {
		t.Errorf("summary %+v; want the ready message sent and nothing counted undelivered", sum)
	}
	want := "1 message(s): 1 delivered, 0 deferred, 0 failed, 0 not tried; left alone: 1 held, 1 quarantined"
	if got := sum.String(); got != want {
		t.Errorf("summary %q; want %q", got, want)
	}
	if got := strings.Join(up.got(), ","); got != "ok@example.net" {
		t.Errorf("upstream received %q; want ok@example.net alone", got)
	}
}
