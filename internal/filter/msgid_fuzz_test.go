package filter

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var addedID = regexp.MustCompile(`Message-ID: <[0-9]{14}\.[0-9a-f]{16}@relay\.example>\r\n`)

// FuzzMsgID: whatever a client submitted, the msgid: filter leaves a
// message that has a Message-ID alone, and gives one that has none a
// Message-ID field in its header section (a later reader finds it there),
// adding nothing else but the line break a last field without one needs.
func FuzzMsgID(f *testing.F) {
	for _, s := range []string{
		"From: a\r\nSubject: x\r\n\r\nbody\r\n", "From: a\r\nMessage-ID: <1@x>\r\n\r\n", "Subject: x", "", "\r\n", "body only\r\n",
		"From: a\r\nbody without a blank line\r\n", "From: a\r\n \r\n", "From: a\n\tb\n\nx", "message-id\t: <x>\r\n\r\n", " folded first\r\n",
		"From: a\r", "X: " + string(bytes.Repeat([]byte("y"), 20000)) + "\r\n\r\nb",
	} {
		f.Add(s)
	}
	m, err := newMsgID("msgid:relay.example", "relay.example")
	if err != nil {
		f.Fatal(err)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, content string) {
		p := filepath.Join(dir, "m.content")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		hadID, _, _, _ := scanHeader(bytes.NewReader([]byte(content)))
		if res := m.Run(context.Background(), p, ""); res.Outcome != OK {
			t.Fatalf("Run(%.300q) = %v", content, res)
		}
		got, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if hadID {
			if string(got) != content {
				t.Fatalf("Run(%.300q) changed a message with a Message-ID: %.300q", content, got)
			}
			return
		}
		has, end, _, _ := scanHeader(bytes.NewReader(got))
		loc := addedID.FindIndex(got)
		if !has || loc == nil || int64(loc[1]) > end {
			t.Fatalf("Run(%.300q) = %.300q: no Message-ID in the header section (ends at %d)", content, got, end)
		}
		rest := string(got[:loc[0]]) + string(got[loc[1]:])
		if before := string(got[:loc[0]]); rest != content && !(strings.HasSuffix(before, "\r\n") && !strings.HasSuffix(before[:len(before)-2], "\n") &&
			before[:len(before)-2]+string(got[loc[1]:]) == content) {
			t.Fatalf("Run(%.300q) = %.300q: more changed than the field", content, got)
		}
	})
}
