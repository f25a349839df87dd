package spool

import (
	"errors"
	"os"
	"strings"
	"testing"
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
