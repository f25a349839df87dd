package spool

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestSpool21SymlinkContent: a content file that is a symbolic link (made
// by anyone who may write in the spool: a filter, a member of the spool's
// group) was followed by a claim: the relay, run as root, sent the file it
// points to (/etc/shadow, a key) to the smarthost as the message. A
// content file must be the spool's own regular file, as a named pipe is
// refused already.
func TestSpool21SymlinkContent(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("root:SECRET-HASH:19000::::::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := newMessage(t, s, "Subject: x\r\n\r\nbody\r\n")
	os.Remove(s.ContentPath(id))
	if err := os.Symlink(secret, s.ContentPath(id)); err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(id)
	if err == nil {
		rc, _, cerr := c.Content()
		var got []byte
		if cerr == nil {
			got, _ = io.ReadAll(rc)
			rc.Close()
		}
		c.Unlock()
		t.Fatalf("Claim of a message whose content is a symbolic link succeeded; it would send %q", got)
	}
	if !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Claim(content a symlink) = %v; want an error saying it is not a regular file", err)
	}
	if rc, err := s.OpenContent(id); err == nil {
		rc.Close()
		t.Errorf("OpenContent followed the symbolic link (queue show --body would print the target)")
	}
}

// TestSpool21EmptyContent: a ready message whose content file is empty
// (a power loss after an E-MailRelay that does not fsync committed its
// envelope, a filter or a hand that truncated it) was claimed and sent as
// an empty message, then removed as delivered: the recipient got nothing
// and the spool lost the one thing left to act on. relaykeeper's own
// content always begins with its Received: header, and E-MailRelay's with
// its own, so an empty one is torn: a claim refuses it and recovery sets
// it aside, reported.
func TestSpool21EmptyContent(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := newMessage(t, s, "Subject: x\r\n\r\nbody\r\n")
	if err := os.Truncate(s.ContentPath(id), 0); err != nil {
		t.Fatal(err)
	}
	if c, err := s.Claim(id); err == nil {
		c.Unlock()
		t.Errorf("Claim of a message with an empty content file succeeded: it would be sent empty")
	} else if !strings.Contains(err.Error(), "empty") {
		t.Errorf("Claim(empty content) = %v; want an error saying the content is empty", err)
	}
	rep, err := s.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Quarantined) != 1 || rep.Quarantined[0] != id || !strings.Contains(rep.Reasons[id], "empty") {
		t.Errorf("Recover: quarantined %v, reasons %v; want %s set aside as empty", rep.Quarantined, rep.Reasons, id)
	}
	if _, err := os.Stat(filepath.Join(dir, ".quarantine", id+".envelope")); err != nil {
		t.Errorf("its envelope is not in the quarantine: %v", err)
	}
	// An administrator's Lock (queue delete, hold) still works on one.
	id2 := newMessage(t, s, "Subject: y\r\n\r\nbody\r\n")
	os.Truncate(s.ContentPath(id2), 0)
	c, err := s.Lock(id2)
	if err != nil {
		t.Fatalf("Lock(empty content) = %v; want it, for queue delete", err)
	}
	if err := c.Delete(); err != nil {
		t.Errorf("Delete: %v", err)
	}
}

// TestSpool21SymlinkEnvelope: an envelope that is a symbolic link was
// followed, and the first line of its target that is not an envelope
// field went, quoted, into the parse error: into the diagnostic log, the
// mail log's quarantine line and queue list. A link to /etc/shadow put
// root's password hash there. An envelope that is a link is now named as
// one and never read, and recovery sets it aside as it sets aside a
// dangling one.
func TestSpool21SymlinkEnvelope(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(t.TempDir(), "shadow")
	if err := os.WriteFile(secret, []byte("root:$6$SECRETHASH:19000:0:99999:7:::\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	id := newMessage(t, s, "Subject: x\r\n\r\nbody\r\n")
	os.Remove(s.EnvelopePath(id, Ready))
	if err := os.Symlink(secret, s.EnvelopePath(id, Ready)); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Read(id)
	if err == nil || strings.Contains(err.Error(), "SECRETHASH") || !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("Read(envelope a link to a secret) = %v; want an error naming the link, without the target's text", err)
	}
	rep, err := s.Recover()
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Quarantined) != 1 || strings.Contains(rep.Reasons[id], "SECRETHASH") {
		t.Errorf("Recover: quarantined %v, reasons %v; want %s set aside, without the target's text", rep.Quarantined, rep.Reasons, id)
	}
}

// TestSpool21NotRegularContent: a message whose content file is a
// directory, a named pipe or a symbolic link was skipped by recovery
// without a word (not quarantined, not counted), refused by the
// forwarders with an ERROR line every second for good, and "queue delete"
// (RemoveUnreadable) failed on it too: only rm by hand ended it. Recovery
// now sets it aside, reported, and RemoveUnreadable removes it.
func TestSpool21NotRegularContent(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	mk := map[string]func(p string) error{
		"directory": func(p string) error { return os.Mkdir(p, 0o755) },
		"pipe":      func(p string) error { return syscall.Mkfifo(p, 0o644) },
		"link":      func(p string) error { return os.Symlink("/etc/passwd", p) },
	}
	ids := map[string]string{}
	for kind, f := range mk {
		id := newMessage(t, s, "Subject: x\r\n\r\nbody\r\n")
		os.Remove(s.ContentPath(id))
		if err := f(s.ContentPath(id)); err != nil {
			t.Fatal(err)
		}
		ids[kind] = id
	}
	// queue delete of one of them.
	if st, err := s.RemoveUnreadable(ids["directory"]); err != nil || st != Ready {
		t.Errorf("RemoveUnreadable(content a directory) = %v, %v; want Ready, nil", st, err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, ids["directory"]+".*")); len(m) != 0 {
		t.Errorf("RemoveUnreadable left %v", m)
	}
	rep, err := s.Recover()
	if err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"pipe", "link"} {
		id := ids[kind]
		if !strings.Contains(rep.Reasons[id], "not a regular file") {
			t.Errorf("Recover: content a %s: quarantined %v, reasons %v; want %s set aside", kind, rep.Quarantined, rep.Reasons, id)
		}
		if _, err := os.Lstat(filepath.Join(dir, ".quarantine", id+".content")); err != nil {
			t.Errorf("content a %s: not in the quarantine: %v", kind, err)
		}
		// Restored, it would only be set aside again.
		if _, _, err := s.Restore(id); err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("Restore(content a %s) = %v; want it refused, saying why", kind, err)
		}
	}
}
