package spool

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// commitMessage is newMessage returning Commit's error instead of failing.
func commitMessage(t *testing.T, s *Spool, content string) error {
	t.Helper()
	w, err := s.Create(t0)
	if err != nil {
		return err
	}
	io.WriteString(w, content)
	if err := w.Prepare(testEnvelope()); err != nil {
		w.Abort()
		return err
	}
	if err := w.Commit(false); err != nil {
		w.Abort()
		return err
	}
	return nil
}

// TestReviewDurSpoolRemovedUnderJournal: a spool directory removed (or
// moved away) while the daemon runs leaves the journal's segment open but
// nameless. A message synced into it is in no file that a restart reads:
// its commit must fail (452), as the classic path's does, not succeed.
func TestReviewDurSpoolRemovedUnderJournal(t *testing.T) {
	for _, how := range []string{"removed", "moved"} {
		t.Run(how, func(t *testing.T) {
			parent := t.TempDir()
			dir := filepath.Join(parent, "spool")
			s, err := Open(dir, nil)
			if err != nil {
				t.Fatal(err)
			}
			j := serve(t, s)
			defer j.kill()
			newMessage(t, s, "Subject: before\r\n\r\n")
			if how == "removed" {
				err = os.RemoveAll(dir)
			} else {
				err = os.Rename(dir, filepath.Join(parent, "elsewhere"))
			}
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				if err := commitMessage(t, s, "Subject: after\r\n\r\n"); err == nil {
					t.Fatalf("commit %d after the spool was %s succeeded; want an error (the client must hear 452)", i, how)
				}
			}
		})
	}
}

// TestReviewDurJournalLeavesRoomToWriteOut: a message served from the
// journal has no files until a checkpoint writes them, which needs as much
// room again. A journal that takes the file system's last bytes (or
// inodes) for served messages leaves no room for that: after a kill the
// replay cannot write them, keeps the segment, and the daemon starts with
// a full disk that its own journal fills, delivering none of them, on
// every start. The journal must stop serving (the commits fall back to
// their own files, or hear 452) while it still has room to write out
// everything it serves, so that a replay after a kill restores every
// acknowledged message.
func TestReviewDurJournalLeavesRoomToWriteOut(t *testing.T) {
	for _, c := range []struct{ name, opts string }{
		{"space", "2m"},
		{"inodes", "50m,nr_inodes=40"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, dir, s := tmpfsSpool(t, c.opts)
			j := serve(t, s)
			body := "Subject: fill\r\n\r\n" + strings.Repeat("x", 50<<10)
			ok := 0
			for range 80 {
				if err := commitMessage(t, s, body); err == nil {
					ok++
				}
			}
			j.kill()
			t.Logf("%d of 80 messages acknowledged", ok)
			if ok == 0 {
				t.Fatal("no message was accepted")
			}
			s2, _ := Open(dir, nil)
			rep, err := s2.Recover()
			if err != nil {
				t.Fatalf("replay after a kill, %d messages acknowledged: %v (report %v)", ok, err, rep)
			}
			es, _ := s2.List()
			if len(es) != ok {
				t.Errorf("%d messages in the spool after the replay; want the %d acknowledged", len(es), ok)
			}
		})
	}
}

// TestReviewDurUnmarshalFoldedCertificate: E-MailRelay writes the
// certificate of a client that presented one as folded PEM, one
// continuation line (starting with a space) per PEM line. Such a message
// is E-MailRelay's, whole, and must be read, not quarantined as torn.
func TestReviewDurUnmarshalFoldedCertificate(t *testing.T) {
	env := "X-MailRelay-Format: #2821.8\r\n" +
		"X-MailRelay-Content: 8bit\r\n" +
		"X-MailRelay-From: alice@example.com\r\n" +
		"X-MailRelay-ToCount: 1\r\n" +
		"X-MailRelay-To-Remote: bob@example.net\r\n" +
		"X-MailRelay-Authentication: \r\n" +
		"X-MailRelay-Client: 192.0.2.1:4321\r\n" +
		"X-MailRelay-ClientCertificate: -----BEGIN CERTIFICATE-----\r\n" +
		" MIIBszCCAVmgAwIBAgIUQ2x1ZW50\r\n" +
		" -----END CERTIFICATE-----\r\n" +
		"X-MailRelay-MailFromAuthIn: \r\n" +
		"X-MailRelay-MailFromAuthOut: \r\n" +
		"X-MailRelay-ForwardTo: \r\n" +
		"X-MailRelay-ForwardToAddress: \r\n" +
		"X-MailRelay-ClientAccountSelector: \r\n" +
		"X-MailRelay-Utf8MailboxNames: 0\r\n" +
		"X-MailRelay-End: 1\r\n" +
		"X-Something-Else: a\r\n" +
		" folded b\r\n"
	e, err := Unmarshal(strings.NewReader(env))
	if err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if e.From != "alice@example.com" || len(e.Recipients) != 1 || e.Recipients[0].Addr != "bob@example.net" || e.Client != "192.0.2.1:4321" {
		t.Errorf("Unmarshal = from %q, recipients %v, client %q", e.From, e.Recipients, e.Client)
	}
	if want := []string{"X-Something-Else: a", " folded b"}; strings.Join(e.Extra, "|") != strings.Join(want, "|") {
		t.Errorf("Extra = %q; want %q (a folded trailer line kept as it was)", e.Extra, want)
	}
	// A line starting with a space anywhere else is still damage.
	bad := strings.Replace(env, "X-MailRelay-To-Remote: bob@example.net\r\n", "X-MailRelay-To-Remote: bob@example.net\r\n continued\r\n", 1)
	if _, err := Unmarshal(strings.NewReader(bad)); err == nil {
		t.Error("a folded To-Remote line was accepted; want a parse error")
	}
}
