package enforce

import (
	"context"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestS27PendingSavedBeforeBan: a spammer's message is being delivered
// when Gmail's refusal of its other one bans it. The message in flight is
// remembered in the pending file, which the restarted queue asks, before
// the ban is saved. Before, the ban was saved and logged first: a relay
// killed in between (a clean-clone CI run under load killed it there)
// came back with the ban and without the pending line, and the message
// went out at its next attempt (TestRep20HeldAcrossRestart). The ban
// file's clock runs while the ban is saved: it looks at the pending file
// then.
func TestS27PendingSavedBeforeBan(t *testing.T) {
	dir := t.TempDir()
	sp := openSpool(t, dir)
	inFlight, ready, other := s27Queue(t, sp, "203.0.113.9"), s27Queue(t, sp, "203.0.113.9"), s27Queue(t, sp, "198.51.100.1")
	c, err := sp.Claim(inFlight)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Unlock()
	pending := filepath.Join(dir, "hold-pending")
	var atSave string
	bans, err := OpenBans(filepath.Join(dir, "bans"), func() time.Time {
		if atSave == "" {
			b, _ := os.ReadFile(pending)
			atSave = "pending file: " + string(b)
		}
		return time.Now()
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, Spool: sp, Bans: bans,
		MailLog: maillog.New(nil)}
	rf := Refusal{ID: "Q1", Client: netip.MustParseAddr("203.0.113.9"), From: "eve@spam.example",
		To: []string{"u@gmail.com"}, Upstream: upstream(gmailUnsolicited)}
	rf.Host = "gmail-smtp-in.l.google.com[142.250.1.26]:25"
	e.Act(context.Background(), rf)
	if _, banned := bans.Due(netip.MustParseAddr("203.0.113.9")); !banned {
		t.Fatal("the spammer is not banned")
	}
	if !strings.Contains(atSave, inFlight) {
		t.Errorf("when the ban was saved, %s; want the message in flight (%s) in it", atSave, inFlight)
	}
	after, _ := os.ReadFile(pending)
	if !strings.Contains(string(after), inFlight) || strings.Contains(string(after), ready) || strings.Contains(string(after), other) {
		t.Errorf("pending file after the ban:\n%s\nwant only the message in flight %s (the ready one %s held, %s another client's)", after, inFlight, ready, other)
	}
	if _, st, err := sp.Read(ready); err != nil || st != spool.Held {
		t.Errorf("the spammer's ready message is %v (%v); want held", st, err)
	}
	if _, st, err := sp.Read(other); err != nil || st != spool.Ready {
		t.Errorf("another client's message is %v (%v); want ready", st, err)
	}
}

// s27Queue spools a message from client to a Gmail recipient.
func s27Queue(t *testing.T, sp *spool.Spool, client string) string {
	t.Helper()
	return queueEnvelope(t, sp, &spool.Envelope{From: "eve@spam.example", Client: client + ":4000", Arrival: time.Now(),
		Recipients: []spool.Recipient{{Addr: "x@gmail.test", Status: spool.Pending}}})
}

// queueEnvelope commits a small message with env to sp and returns its id.
func queueEnvelope(t *testing.T, sp *spool.Spool, env *spool.Envelope) string {
	t.Helper()
	w, err := sp.Create(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: t\r\n\r\nbody\r\n")
	if err := w.Prepare(env); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(false); err != nil {
		t.Fatal(err)
	}
	return w.ID()
}

// openSpool opens a spool in dir/spool.
func openSpool(t *testing.T, dir string) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(filepath.Join(dir, "spool"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

// TestS27PendingOwnerOneNameASpool: the pending file names each relay
// sharing a ban file by its spool; a relay started on the same spool by
// another spelling (a symbolic link) named itself differently, and its
// earlier lines were never read or removed again (rev27).
func TestS27PendingOwnerOneNameASpool(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "spool")
	if err := os.Mkdir(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	var owners []string
	for _, d := range []string{real, link, link + "/"} {
		sp, err := spool.Open(d, nil)
		if err != nil {
			t.Fatal(err)
		}
		owners = append(owners, (&Enforcer{Spool: sp}).pendingOwner())
	}
	if owners[0] != owners[1] || owners[0] != owners[2] {
		t.Errorf("one spool, owners %q; want one name", owners)
	}
}
