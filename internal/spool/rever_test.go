package spool

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// erEnvelope is an envelope as E-MailRelay 2.6 writes it: no
// X-Relaykeeper-Arrival, since E-MailRelay keeps the time in the name.
const erEnvelope = "X-MailRelay-Format: #2821.8\r\nX-MailRelay-Content: 7bit\r\n" +
	"X-MailRelay-From: a@example.org\r\nX-MailRelay-ToCount: 1\r\n" +
	"X-MailRelay-To-Remote: x@example.com\r\nX-MailRelay-Authentication: \r\n" +
	"X-MailRelay-Client: 127.0.0.1:4000\r\nX-MailRelay-ClientCertificate: \r\n" +
	"X-MailRelay-MailFromAuthIn: \r\nX-MailRelay-MailFromAuthOut: \r\n" +
	"X-MailRelay-ForwardTo: \r\nX-MailRelay-ForwardToAddress: \r\n" +
	"X-MailRelay-ClientAccountSelector: \r\nX-MailRelay-Utf8MailboxNames: 0\r\n" +
	"X-MailRelay-End: 1\r\n"

// A message that E-MailRelay (or emailrelay-submit, or a script) put in
// the spool has no arrival line. Its arrival is the time in E-MailRelay's
// file name (emailrelay.PID.SECONDS.SEQ), else the content file's
// modification time: never the zero time, which made the scheduler take
// the message for 106751 days old and fail it as expired at its first
// temporary failure, with a bounce to its sender.
func TestRevERArrivalOfForeignEnvelope(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for id, want := range map[string]time.Time{
		"emailrelay.1234.1700000000.1": time.Unix(1700000000, 0),
		"scripted-message":             mtime,
		"emailrelay.x.notanumber.1":    mtime,
	} {
		content := filepath.Join(dir, id+".content")
		if err := os.WriteFile(content, []byte("Subject: x\r\n\r\nhi\r\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(content, mtime, mtime); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, id+".envelope"), []byte(erEnvelope), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := s.Claim(id)
		if err != nil {
			t.Fatalf("Claim(%s) = %v", id, err)
		}
		if !c.Env.Arrival.Equal(want) {
			t.Errorf("Claim(%s).Env.Arrival = %v; want %v", id, c.Env.Arrival, want)
		}
		if err := c.Move(Ready); err != nil {
			t.Fatal(err)
		}
		// Saved, it keeps that arrival.
		env, err := s.readEnvelope(id, Ready)
		if err != nil || !env.Arrival.Equal(want) {
			t.Errorf("after a save, Arrival of %s = %v, %v; want %v", id, env.Arrival, err, want)
		}
	}
}

// E-MailRelay 2.6 reads an envelope's fields in a fixed order, each
// required (GStore::Envelope::read): for format #2821.8, after Client
// comes ClientCertificate. relaykeeper wrote #2821.8 without it, so
// E-MailRelay (an instance sharing the spool, its --as-client, its POP
// server) failed on every envelope relaykeeper wrote: 'expected
// "X-MailRelay-ClientCertificate:"'.
func TestRevEREnvelopeFieldOrder(t *testing.T) {
	e := testEnvelope()
	e.Local = []string{"mbox"}
	var keys []string
	for _, line := range strings.Split(string(e.Marshal()), "\r\n") {
		k, _, _ := strings.Cut(line, ":")
		if strings.HasPrefix(k, "X-MailRelay-") {
			keys = append(keys, strings.TrimPrefix(k, "X-MailRelay-"))
		}
		if k == "X-MailRelay-End" {
			break
		}
	}
	want := []string{"Format", "Content", "From", "ToCount", "To-Local", "To-Remote", "To-Remote", "Authentication", "Client",
		"ClientCertificate", "MailFromAuthIn", "MailFromAuthOut", "ForwardTo", "ForwardToAddress", "ClientAccountSelector",
		"Utf8MailboxNames", "End"}
	if !slices.Equal(keys, want) {
		t.Errorf("envelope fields %v;\nwant E-MailRelay's order %v", keys, want)
	}
}
