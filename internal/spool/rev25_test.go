package spool

import (
	"bytes"
	"fmt"
	"os"
	"syscall"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// TestRev25ORCPTUnicodeBlankRoundTrip: a utf-8 ORCPT (RFC 6533) may end in
// a blank that is not ASCII's ("utf-8;a\x{A0}": go-smtp decodes it, and
// the relay takes it). Marshal wrote such an ORCPT without the NOTIFY
// field that marks "the rest of the line is the ORCPT", and the reader's
// TrimSpace took the U+00A0 (or U+0085, U+2003) off: the ORCPT passed on
// upstream and in DSNs was not the one the client gave.
func TestRev25ORCPTUnicodeBlankRoundTrip(t *testing.T) {
	for _, orcpt := range []string{"UTF-8;a\u00a0", "UTF-8;a\u0085", "UTF-8;a\u2003", "UTF-8;\u3000", "UTF-8;a\u00a0b\u00a0"} {
		e := testEnvelope()
		e.Recipients = []Recipient{{Addr: "a@example.net", Status: Pending, ORCPT: orcpt}}
		got, err := Unmarshal(bytes.NewReader(e.Marshal()))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(e.Recipients, got.Recipients); diff != "" {
			t.Errorf("ORCPT %q read back differs (-written +read):\n%s", orcpt, diff)
		}
	}
}

// FuzzRev25DsnRoundTrip: any ORCPT the SMTP edge can take (printable
// ASCII, or UTF-8 without controls for the utf-8 type) and NOTIFY value
// is read back from the envelope as written.
func FuzzRev25DsnRoundTrip(f *testing.F) {
	f.Add("rfc822; a b ", "SUCCESS", " lead trail ")
	f.Add("utf-8;a\u00a0", "", "x")
	f.Add("rfc822;x NOTIFY=NEVER", "", "+")
	f.Fuzz(func(t *testing.T, orcpt, notify, envid string) {
		ok := func(s string) bool {
			if !utf8.ValidString(s) {
				return false
			}
			for _, r := range s {
				if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) && r != 0x85 {
					return false
				}
			}
			return true
		}
		if !ok(orcpt) || !ok(envid) || orcpt == "" || bytes.ContainsAny([]byte(notify), " \t\r\n\v\f") || !ok(notify) {
			return
		}
		if _, _, found := cutString(orcpt, ";"); !found {
			return
		}
		for _, r := range envid {
			if r >= 0x80 { // ENVID is xtext: ASCII only
				return
			}
		}
		switch notify {
		case "", "NEVER", "SUCCESS", "FAILURE", "DELAY", "SUCCESS,FAILURE", "SUCCESS,FAILURE,DELAY":
		default:
			return
		}
		e := testEnvelope()
		e.EnvID = envid
		e.Recipients = []Recipient{{Addr: "a@example.net", Status: Pending, ORCPT: orcpt, Notify: notify}}
		got, err := Unmarshal(bytes.NewReader(e.Marshal()))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(e.Recipients, got.Recipients); diff != "" {
			t.Errorf("ORCPT %q NOTIFY %q read back differs (-written +read):\n%s", orcpt, notify, diff)
		}
		if got.EnvID != envid {
			t.Errorf("ENVID %q read back as %q", envid, got.EnvID)
		}
	})
}

func cutString(s, sep string) (string, string, bool) {
	i := bytes.Index([]byte(s), []byte(sep))
	if i < 0 {
		return s, "", false
	}
	return s[:i], s[i+len(sep):], true
}

// TestRev25KeptSegmentsNoDuplicate: group commit stopped because journal
// segments could not be removed; a message recorded in a kept segment and
// delivered after the stop must not come back at the next start.
func TestRev25KeptSegmentsNoDuplicate(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir, nil)
	j := openJournal(t, s)
	defer func(f func(string) error) { removeSegment = f }(removeSegment)
	removeSegment = func(string) error { return syscall.EPERM }
	var ids []string
	for i := range 2 * maxKeptSegments {
		ids = append(ids, newMessage(t, s, fmt.Sprintf("Subject: %d\r\n\r\nbody\r\n", i)))
		j.checkpoint()
	}
	if s.journal.Load() != nil {
		t.Fatal("group commit still on")
	}
	for _, id := range ids {
		c, err := s.Claim(id)
		if err != nil {
			t.Fatalf("claim %s: %v", id, err)
		}
		if err := c.Delivered(); err != nil {
			t.Fatalf("delivered %s: %v", id, err)
		}
	}
	s.WaitRemovals()
	j.close()
	for _, o := range j.old { // the process ends: its locks go
		o.f.Close()
	}
	j.f.Close()
	removeSegment = os.Remove
	t.Logf("segments at the next start: %v", s.segments())
	s2, _ := Open(dir, nil) // the same boot
	rep, err := s2.Replay()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("report %+v", rep)
	ents, _ := s2.List()
	if len(ents) != 0 {
		t.Errorf("%d of %d messages delivered after group commit stopped are back after the next start", len(ents), len(ids))
	}
}
