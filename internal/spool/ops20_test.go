package spool

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestOps20DanglingEnvelopeLink: an envelope that is a symbolic link to a
// file that does not exist (a spool copied or tidied by hand) was reported
// as "message is locked by another worker" by Read (queue show), taken
// for an envelope renamed three times over; and recovery quarantined it
// saying "no such message". Read now names the link and where it leads.
func TestOps20DanglingEnvelopeLink(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const id = "6B0252D2F906FE65"
	if err := os.WriteFile(s.ContentPath(id), []byte("x\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/nonexistent/envelope", s.EnvelopePath(id, Ready)); err != nil {
		t.Fatal(err)
	}
	_, _, err = s.Read(id)
	if err == nil || errors.Is(err, ErrBusy) || errors.Is(err, ErrNotFound) ||
		!strings.Contains(err.Error(), id+".envelope: a symbolic link to /nonexistent/envelope") {
		t.Errorf("Read(envelope a dangling link) = %v; want an error naming %s.envelope and its target", err, id)
	}
}

// TestOps20FIFOEnvelope: an envelope that is a named pipe (mkfifo, a
// script's mistake) made every reader wait for a writer for good: the
// relay's recovery at start (so the relay never said "spool recovered" and
// then ignored SIGTERM, waiting for it), "queue list" and "queue show"
// hung. It now reads as an unreadable envelope, which recovery
// quarantines.
func TestOps20FIFOEnvelope(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	const id = "6B0252D2F906FE66"
	if err := os.WriteFile(s.ContentPath(id), []byte("x\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(s.EnvelopePath(id, Ready), 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _, err := s.Read(id)
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), id+".envelope") {
			t.Errorf("Read(envelope a named pipe) = %v; want an error naming %s.envelope", err, id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read(envelope a named pipe) still waiting after 5 s")
	}
}

// TestOps20FIFOContent: a content file that is a named pipe made "queue
// show" (OpenContent) wait for a writer for good, and a claim (a delivery
// or a queue command) read from it for good. Both now refuse it as not a
// regular file.
func TestOps20FIFOContent(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const id = "6B0252D2F906FE64"
	env := "X-MailRelay-Format: #2821.8\r\nX-MailRelay-Content: 8bit\r\nX-MailRelay-From: a@example.org\r\n" +
		"X-MailRelay-ToCount: 1\r\nX-MailRelay-To-Remote: b@example.net\r\nX-MailRelay-Authentication: \r\n" +
		"X-MailRelay-Client: 127.0.0.1:5\r\nX-MailRelay-End: 1\r\n"
	if err := os.WriteFile(s.EnvelopePath(id, Ready), []byte(env), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(s.ContentPath(id), 0o644); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]func() error{
		"OpenContent": func() error {
			rc, err := s.OpenContent(id)
			if err == nil {
				rc.Close()
			}
			return err
		},
		"Lock": func() error {
			c, err := s.Lock(id)
			if err == nil {
				c.Unlock()
			}
			return err
		},
	} {
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s(content a named pipe) = %v; want an error saying it is not a regular file", name, err)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s(content a named pipe) still waiting after 5 s", name)
		}
	}
}

// TestOps20FIFOHiddenContent: recovery opens a served message's content on
// its way into place (".ID.content", left by a process that died) to see
// whether anyone holds it; a named pipe of that name made the relay's start
// wait for good, as for an envelope (TestOps20FIFOEnvelope).
func TestOps20FIFOHiddenContent(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(dir, ".6B0252D2F906FE64.content")
	if err := syscall.Mkfifo(name, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := s.Recover()
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Recover: %v", err)
		}
		if _, err := os.Lstat(name); err == nil {
			t.Errorf("%s left in the spool", filepath.Base(name))
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Recover with a named pipe for a hidden content file: still waiting after 5 s")
	}
}
