package deliver

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestSMTPUTF8Downgrade: toward an upstream without SMTPUTF8, a UTF-8
// address fails alone with 5.6.7 and is never sent; an ASCII one goes
// without the SMTPUTF8 parameter when the headers are ASCII; UTF-8 headers
// fail the whole message with 5.6.7. The same for a message served from
// memory, whose headers are read there rather than from a file.
func TestSMTPUTF8Downgrade(t *testing.T) {
	for _, served := range []bool{false, true} {
		testSMTPUTF8Downgrade(t, served)
	}
}

func testSMTPUTF8Downgrade(t *testing.T, served bool) {
	for _, c := range []struct {
		name, header string
		want         map[string]spool.RcptStatus
		got          string
	}{
		{"ascii headers", "Subject: plain\r\n", map[string]spool.RcptStatus{"ascii@example.net": spool.Sent, "jürgen@example.net": spool.Bounced}, "ascii@example.net"},
		{"utf-8 headers", "Subject: grüße\r\n", map[string]spool.RcptStatus{"ascii@example.net": spool.Bounced, "jürgen@example.net": spool.Bounced}, ""},
	} {
		t.Run(fmt.Sprintf("%s, served %v", c.name, served), func(t *testing.T) {
			up := startUpstream(t) // go-smtp without SMTPUTF8
			sp, s, _, id := setup(t, up.addr, "x@example.net")
			if cl, err := sp.Claim(id); err != nil || cl.Delete() != nil {
				t.Fatal(err)
			}
			if served {
				if _, err := sp.OpenJournal(); err != nil {
					t.Fatal(err)
				}
				sp.Watch(nopWatcher{})
				defer sp.Watch(nil)
			}
			w, _ := sp.Create(t0)
			io.WriteString(w, c.header+"\r\nbody\r\n")
			env := &spool.Envelope{From: "a@example.com", Arrival: t0, SMTPUTF8: true, Recipients: rcpts("ascii@example.net", "jürgen@example.net")}
			if err := w.Prepare(env); err != nil {
				t.Fatal(err)
			}
			if err := w.Commit(false); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(sp.ContentPath(w.ID())); os.IsNotExist(err) != served {
				t.Fatalf("content file: %v; want it only when not served from memory", err)
			}
			refusals := &countRefusals{}
			s.opts.Refusals = refusals
			if _, err := s.RunOnce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if refusals.n != 0 {
				t.Errorf("the enforcer heard of %d refusals; want none: the relay made the 5.6.7 itself", refusals.n)
			}
			got, _, err := sp.Read(w.ID())
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range got.Recipients {
				// A failure is the relay's own account ("5.6.7 ..."),
				// not a reply with a code that a notice would put in
				// the upstream's mouth.
				if r.Status != c.want[r.Addr] || (r.Status == spool.Bounced && !strings.HasPrefix(r.Reply, "5.6.7 ")) {
					t.Errorf("%s: %s %q; want %s (\"5.6.7 ...\" if failed)", r.Addr, r.Status, r.Reply, c.want[r.Addr])
				}
			}
			if g := strings.Join(up.got(), ","); g != c.got {
				t.Errorf("upstream received %q; want %q", g, c.got)
			}
		})
	}
}

// countRefusals counts the refusals the enforcer would hear of.
type countRefusals struct {
	mu sync.Mutex
	n  int
}

func (c *countRefusals) Refused(Result) Effect {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	return Effect{}
}
