package postfixlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRev20bStopWhileRecoveringKeepsWhatWasDone: a stop (SIGTERM) while
// the rest of a rotated log is read (pfe20 made that read stop between
// two 64 KiB reads) saved nothing: what the caller did for the lines
// read so far (an encapsulated copy sent, recorded by Checkpoint) was
// lost, and the next start read those lines and did it all again.
func TestRev20bStopWhileRecoveringKeepsWhatWasDone(t *testing.T) {
	dir := t.TempDir()
	log, state := filepath.Join(dir, "mail.log"), filepath.Join(dir, "state")
	line := func(i int) string { return fmt.Sprintf("%05d %s\n", i, strings.Repeat("x", 1017)) }
	appendFile(t, log, line(0))
	acted := map[string]bool{}
	checkpoint := func() ([]byte, error) { return []byte(fmt.Sprintf("%d", len(acted))), nil }
	if err := (&Follower{Path: log, State: state, Once: true, Checkpoint: checkpoint}).Run(context.Background(), func(l string) error {
		acted[l[:5]] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Written after the last read, then rotated while nobody read.
	var more strings.Builder
	for i := 1; i < 1024; i++ {
		more.WriteString(line(i))
	}
	appendFile(t, log, more.String())
	if err := os.Rename(log, log+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log, "")

	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	err := (&Follower{Path: log, State: state, Checkpoint: checkpoint}).Run(ctx, func(l string) error {
		acted[l[:5]] = true
		if n++; n == 10 {
			cancel()
		}
		return nil
	})
	cancel()
	if !errors.Is(err, context.Canceled) || n >= 1023 {
		t.Fatalf("Run = %v after %d lines; want context.Canceled before the end of the rotated file", err, n)
	}
	st, err := LoadState(state)
	if err != nil {
		t.Fatal(err)
	}
	if string(st.App) != fmt.Sprint(len(acted)) {
		t.Errorf("after the stop the state holds %s lines acted on; want %d: what was done while the rotated file was read is lost", st.App, len(acted))
	}
	again := 0
	if err := (&Follower{Path: log, State: state, Once: true, Checkpoint: checkpoint}).Run(context.Background(), func(l string) error {
		if acted[l[:5]] {
			again++
		}
		acted[l[:5]] = true
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if again > 0 || len(acted) != 1024 {
		t.Errorf("the next start handed on %d lines again (%d lines in all); want none again, 1024 in all", again, len(acted))
	}
}

// TestRev20bOtherProgramsTags: pfe20 took any tag NAME/PROCESS whose
// PROCESS is a Postfix daemon's name for Postfix's, so Cyrus IMAP's LMTP
// server (tag cyrus/lmtp, often beside Postfix), a tag without a name
// ("/smtpd") and one of odd characters (a control character as rsyslog
// escapes it, "#033/smtp") were read as Postfix's lines. A syslog_name
// is a name: letters, digits, ".", "_", "-" and "/".
func TestRev20bOtherProgramsTags(t *testing.T) {
	const msg = "[12]: 4A0001ABC1: to=<u@gmail.test>, relay=gmail-smtp-in.l.google.com[192.0.2.26]:25, delay=1, delays=1/0/0/0, dsn=5.7.1, " +
		"status=bounced (host gmail-smtp-in.l.google.com[192.0.2.26] said: 550 5.7.1 unsolicited - gsmtp (in reply to end of DATA command))"
	for _, tag := range []string{"cyrus/lmtp", "/smtpd", "#033/smtp", "a b/smtp", "x\x1b/smtpd", "x;y/smtpd"} {
		if e, ok := ParseLine("Nov 22 10:00:00 mx " + tag + msg); ok {
			t.Errorf("tag %q read as Postfix's (%v)", tag, e.Kind)
		}
	}
	for _, tag := range []string{"postfix/smtp", "postfix-out/smtp", "postfix/submission/smtp", "relay-zombig-name/smtp", "mx_2.relay/lmtp"} {
		if _, ok := ParseLine("Nov 22 10:00:00 mx " + tag + msg); !ok {
			t.Errorf("tag %q not read as Postfix's", tag)
		}
	}
}
