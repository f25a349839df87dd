package queue

import (
	"os"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestSpool21EmptyContentListed: a message whose content file is empty is
// never delivered (the spool refuses to claim it, recovery sets it aside),
// so the listing says it is damaged, as it does for a missing content
// file, rather than show a ready message of 0 bytes that never goes.
func TestSpool21EmptyContentListed(t *testing.T) {
	s, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	id := addMessage(t, s, "a@example.com", []string{"b@example.net"}, false, nil, spool.Ready)
	if err := os.Truncate(s.ContentPath(id), 0); err != nil {
		t.Fatal(err)
	}
	m, err := Get(s, id)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(m.Error, "empty") {
		t.Errorf("Get(empty content).Error = %q; want it to say the content file is empty", m.Error)
	}
}

// TestSpool21EmailRelayReason: a message E-MailRelay failed (.bad) says
// why only in its X-MailRelay-Reason lines. queue list and show gave it
// no reply at all ("failed", a pending recipient, nothing else), and
// --reply or --match on the reason found nothing, so an administrator
// taking over E-MailRelay's spool could not tell why, nor select by it.
func TestSpool21EmailRelayReason(t *testing.T) {
	s, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const id = "emailrelay.100.1796598187.3"
	env := "X-MailRelay-Format: #2821.7\r\nX-MailRelay-Content: 7bit\r\nX-MailRelay-From: a@example.com\r\n" +
		"X-MailRelay-ToCount: 1\r\nX-MailRelay-To-Remote: e@example.net\r\nX-MailRelay-Authentication: \r\n" +
		"X-MailRelay-Client: 127.0.0.1:5\r\nX-MailRelay-End: 1\r\n" +
		"X-MailRelay-Reason: 451 greylisted, try later\r\nX-MailRelay-ReasonCode: 451\r\n" +
		"X-MailRelay-Reason: 452 mailbox full\r\nX-MailRelay-ReasonCode: 452\r\n"
	if err := os.WriteFile(s.EnvelopePath(id, spool.Failed), []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.ContentPath(id), []byte("Subject: x\r\n\r\nbody\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := Get(s, id)
	if err != nil {
		t.Fatal(err)
	}
	if m.LastReply != "452 mailbox full" {
		t.Errorf("LastReply = %q; want E-MailRelay's last reason, %q", m.LastReply, "452 mailbox full")
	}
	msgs, err := List(s, Filter{Reply: "mailbox full"})
	if err != nil || len(msgs) != 1 {
		t.Errorf("List(--reply 'mailbox full') = %d messages, %v; want the failed one", len(msgs), err)
	}
}

// TestSpool21StateJournal: queue list gives a message only a dead relay's
// journal holds the state "journal" (text and --json), but --state
// journal was a usage error (exit 2): a script that selects by the states
// the listing prints failed on this one.
func TestSpool21StateJournal(t *testing.T) {
	sts, err := ParseStates("journal,held")
	if err != nil {
		t.Fatalf(`ParseStates("journal,held") = %v; want the state the listing prints accepted`, err)
	}
	f := Filter{States: sts}
	if !f.match(&Message{State: JournalState}) || !f.match(&Message{State: "held"}) || f.match(&Message{State: "ready"}) {
		t.Errorf("--state journal,held: matches journal %v, held %v, ready %v; want true, true, false",
			f.match(&Message{State: JournalState}), f.match(&Message{State: "held"}), f.match(&Message{State: "ready"}))
	}
}
