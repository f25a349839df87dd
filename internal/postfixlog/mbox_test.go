package postfixlog

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestFindInMbox(t *testing.T) {
	first := "From: a@example.com\nMessage-ID: <one@example.com>\nSubject: first\n\nbody\n>From the start\n"
	second := "From: b@example.com\nMessage-ID:\n <Two@Example.com>\n\nline\n\n>>From quoted twice\nFrom not a separator\n"
	resent := "From: a@example.com\nMessage-ID: <one@example.com>\nSubject: resent\n\nnewer\n"
	mbox := "From a@example.com  Sun Nov 22 10:00:00 2026\n" + first + "\n" +
		"From b@example.com  Sun Nov 22 10:00:01 2026\nReturn-Path: <b@example.com>\nX-Original-To: backup@localhost\nDelivered-To: backup@localhost\n" +
		second[:len(second)-len(">>From quoted twice\nFrom not a separator\n")] + ">>>From quoted twice\n>From not a separator\n\n" +
		"From a@example.com  Sun Nov 22 10:00:02 2026\n" + resent + "\n"
	path := filepath.Join(t.TempDir(), "backup")
	if err := os.WriteFile(path, []byte(mbox), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ id, want string }{
		{"<two@example.com>", second},
		{"one@example.com", resent}, // the last one
	}
	for _, tt := range tests {
		got, err := FindInMbox(path, tt.id)
		if err != nil || string(got) != tt.want {
			t.Errorf("FindInMbox(%q) = %q, %v; want %q", tt.id, got, err, tt.want)
		}
	}
	if _, err := FindInMbox(path, "<three@example.com>"); !errors.Is(err, ErrNotInMbox) {
		t.Errorf("FindInMbox(absent) = %v; want ErrNotInMbox", err)
	}
}

// TestFindInMboxQueueID: a Message-ID is the sender's text. With the queue
// ids of the refused message, only a copy whose Received field Postfix
// wrote for one of them is taken, not a later message that reuses the id.
func TestFindInMboxQueueID(t *testing.T) {
	own := "Received: from mx.partner.example (mx.partner.example [198.51.100.9])\n\tby relay.example (Postfix) with ESMTP id\n\t4C2B7985118 for <u@gmail.com>; Sun, 22 Nov 2026 10:00:00 +0000 (UTC)\n" +
		"Message-ID: <predictable@partner.example>\n\nthe partner's message\n"
	forged := "Received: from mx.attacker.example (mx.attacker.example [203.0.113.7])\n\tby relay.example (Postfix) with ESMTP id 5D0E1985119\n\tfor <x@attacker.example>; Sun, 22 Nov 2026 10:00:05 +0000 (UTC)\n" +
		"Received: from x by y with ESMTP id 4C2B7985118; the sender's, below Postfix's\n" +
		"Message-ID: <predictable@partner.example>\n\nthe attacker's text\n"
	path := partnerThenAttackerMbox(t, own, forged)
	if got, err := FindInMbox(path, "predictable@partner.example", "4C2B7985118"); err != nil || string(got) != own {
		t.Errorf("FindInMbox(queue 4C2B7985118) = %q, %v; want the partner's copy", got, err)
	}
	if got, err := FindInMbox(path, "predictable@partner.example", "", "5D0E1985119"); err != nil || string(got) != forged {
		t.Errorf("FindInMbox(queue 5D0E1985119) = %q, %v; want that copy", got, err)
	}
	if _, err := FindInMbox(path, "predictable@partner.example", "6E1F2A9811A"); !errors.Is(err, ErrNotInMbox) {
		t.Errorf("FindInMbox(another queue id) = %v; want ErrNotInMbox", err)
	}
}

// TestPfe18FindInMboxRecipientSpellsQueueID: smtpd's Received field names
// the client's one recipient ("for <RCPT>"), and a quoted local part may
// spell "id" and another message's queue id (so may a client certificate's
// CN, before Postfix's "by"). A later message reusing the
// partner's Message-ID, sent to `"a id 4C2B7985118 b"@gmail.com` (as a
// real Postfix 3.7 writes it), is not the partner's copy: encapsulating it
// sent the attacker's text, under the relay's name, to the partner's
// recipient.
func TestPfe18FindInMboxRecipientSpellsQueueID(t *testing.T) {
	own := "Received: from mx.partner.example (mx.partner.example [198.51.100.9])\n\tby relay.example (Postfix) with ESMTP id 4C2B7985118\n\tfor <u@gmail.com>; Sun, 22 Nov 2026 10:00:00 +0000 (UTC)\n" +
		"Message-ID: <predictable@partner.example>\n\nthe partner's message\n"
	forged := "Received: from id (mx.attacker.example [203.0.113.7])\n\t(Client CN \"x id 4C2B7985118\", Issuer \"x\" (not verified))\n\tby relay.example (Postfix) with ESMTP id 5D0E1985119\n\tfor <\"a id 4C2B7985118 b\"@gmail.com>; Sun, 22 Nov 2026 10:00:05 +0000 (UTC)\n" +
		"Message-ID: <predictable@partner.example>\n\nthe attacker's text\n"
	path := partnerThenAttackerMbox(t, own, forged)
	if got, err := FindInMbox(path, "predictable@partner.example", "4C2B7985118"); err != nil || string(got) != own {
		t.Errorf("FindInMbox(queue 4C2B7985118) = %q, %v; want the partner's copy", got, err)
	}
	if got, err := FindInMbox(path, "predictable@partner.example", "5D0E1985119"); err != nil || string(got) != forged {
		t.Errorf("FindInMbox(queue 5D0E1985119) = %q, %v; want that copy", got, err)
	}
	// Pickup's field: "by HOST (Postfix, from userid 0) id QUEUEID; DATE".
	local := "Received: by relay.example (Postfix, from userid 0)\n\tid 6E1F2A9811A; Sun, 22 Nov 2026 10:00:06 +0000 (UTC)\nMessage-ID: <local@relay.example>\n\nlocal\n"
	if err := os.WriteFile(path, []byte("From root@relay.example  Sun Nov 22 10:00:06 2026\n"+local+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := FindInMbox(path, "local@relay.example", "6E1F2A9811A"); err != nil || string(got) != local {
		t.Errorf("FindInMbox(pickup's) = %q, %v; want it", got, err)
	}
}

// partnerThenAttackerMbox writes a backup mbox holding the partner's
// message own, then the attacker's forged one, and returns its path.
func partnerThenAttackerMbox(t *testing.T, own, forged string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "backup")
	mbox := "From a@partner.example  Sun Nov 22 10:00:00 2026\n" + own + "\n" + "From b@attacker.example  Sun Nov 22 10:00:05 2026\n" + forged + "\n"
	if err := os.WriteFile(path, []byte(mbox), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
