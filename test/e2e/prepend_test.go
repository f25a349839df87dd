package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestAccessPrepend: an access table's PREPEND result adds its header
// field before the relay's Received header, as Postfix's smtpd does, once
// however many recipients' checks asked for it, and the checks go on
// (a later REJECT still refuses). In store-and-forward and proxy mode.
func TestAccessPrepend(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rcpt := writeFile(t, dir, "recipient_access", "tagged@example.net  PREPEND X-Tagged: yes\nrefused@example.net  REJECT\n", 0o644)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
client_restrictions = ["check_client_access cidr:%s"]
recipient_restrictions = ["check_recipient_access hash:%s", "permit_mynetworks", "reject"]
`, writeFile(t, dir, "client_cidr", "127.0.0.0/8  PREPEND X-Relay-Client: local\n", 0o644), rcpt))
	for _, mode := range []string{"--as-server", "--as-proxy"} {
		sink := harness.StartSink(t, harness.SinkOptions{})
		args := []string{"--interface", "127.0.0.1", "--spool-dir", t.TempDir(), "--config", cfg, "--no-bounces"}
		if mode == "--as-server" {
			args = append(args, "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect")
		} else {
			args = append(args, "--as-proxy", sink.Addr())
		}
		r := startRelay(t, "127.0.0.1", args...)
		if got, _ := probeRcpt(t, r.addr(), "refused@example.net"); got.code() != 554 {
			t.Errorf("%s: RCPT TO:<refused@example.net> = %q; want 554 (the checks go on after PREPEND)", mode, got)
		}
		mustSend(t, r.addr(), "alice@example.org", []string{"tagged@example.net", "bob@example.net", "carol@example.net"}, message("prepend"))
		sink.WaitCount(t, 1, 10*time.Second)
		data := sink.Messages()[0].Data
		want := "X-Relay-Client: local\nX-Tagged: yes\nReceived: from " // the sink keeps LF
		if !strings.HasPrefix(data, want) || strings.Count(data, "X-Relay-Client:") != 1 {
			t.Errorf("%s: the message upstream begins %q; want %q, each field once", mode, head(data), want)
		}
	}
}

// TestAccessRedirectBCCDiscard: REDIRECT and BCC results in access tables
// change the stored message's recipients (the last REDIRECT wins), and
// DISCARD ends its restriction list as Postfix's smtpd does (it permits):
// a REJECT after it in the same list is not reached, and the client hears
// 250 for a message that is kept nowhere.
func TestAccessRedirectBCCDiscard(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rcpt := writeFile(t, dir, "recipient_access", "redir@example.net  REDIRECT quarantine@example.org\n"+
		"copy@example.net  BCC audit@example.org\n", 0o644)
	sender := writeFile(t, dir, "sender_access", "discard@example.org  DISCARD\n", 0o644)
	senderReject := writeFile(t, dir, "sender_reject", "discard@example.org  REJECT\n", 0o644)
	cfg := writeConfig(t, fmt.Sprintf(`[policy]
sender_restrictions = ["check_sender_access hash:%s", "check_sender_access hash:%s"]
recipient_restrictions = ["check_recipient_access hash:%s", "permit_mynetworks", "reject"]
`, sender, senderReject, rcpt))
	sink := harness.StartSink(t, harness.SinkOptions{})
	spool := t.TempDir()
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--no-bounces",
		"--interface", "127.0.0.1", "--spool-dir", spool, "--config", cfg)

	mustSend(t, r.addr(), "alice@example.org", []string{"copy@example.net", "bob@example.net"}, message("bcc"))
	sink.WaitCount(t, 1, 10*time.Second)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net", "redir@example.net"}, message("redirect"))
	sink.WaitCount(t, 2, 10*time.Second)
	got := map[string][]string{}
	for _, m := range sink.Messages() {
		subj := "bcc"
		if strings.Contains(m.Data, "Subject: redirect") {
			subj = "redirect"
		}
		got[subj] = append(got[subj], m.To...)
	}
	if want := []string{"copy@example.net", "bob@example.net", "audit@example.org"}; !sameSet(got["bcc"], want) {
		t.Errorf("BCC: the upstream got the message for %q; want %q", got["bcc"], want)
	}
	if want := []string{"quarantine@example.org"}; !sameSet(got["redirect"], want) {
		t.Errorf("REDIRECT: the upstream got the message for %q; want %q", got["redirect"], want)
	}

	// The second table's REJECT follows DISCARD in the same list: Postfix
	// never reaches it.
	a := tryMessage(t, r.addr(), "127.0.0.1", "discard@example.org", "bob@example.net")
	if a.rcpt.code() != 250 || a.final.code() != 250 {
		t.Errorf("MAIL FROM:<discard@example.org>: RCPT %q, end of data %q; want 250 and 250 (discarded)", a.rcpt, a.final)
	}
	time.Sleep(500 * time.Millisecond)
	if n := sink.Count(); n != 2 {
		t.Errorf("the upstream has %d messages; want 2 (the discarded one never goes)", n)
	}
}

func sameSet(a, b []string) bool {
	return len(a) == len(b) && !slices.ContainsFunc(a, func(s string) bool { return !slices.Contains(b, s) })
}

// TestReceivedProtocolAfterHelo: the Received header names the protocol
// as Postfix does, "with SMTP" for a client that said HELO and "with
// ESMTP" after EHLO (RFC 3848's names).
func TestReceivedProtocolAfterHelo(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	r := startRelay(t, "127.0.0.1", "--as-proxy", sink.Addr(), "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	for i, tc := range []struct{ greeting, want string }{{"HELO", " with SMTP id "}, {"EHLO", " with ESMTP id "}} {
		c := mustDial(t, r.addr(), "127.0.0.1")
		mustCmd(t, c, "250", "%s client.test", tc.greeting)
		mustCmd(t, c, "250", "MAIL FROM:<a@example.org>")
		mustCmd(t, c, "250", "RCPT TO:<b@example.net>")
		mustCmd(t, c, "354", "DATA")
		mustCmd(t, c, "250", "Subject: %s\r\n\r\nbody\r\n.", tc.greeting)
		c.Close()
		sink.WaitCount(t, i+1, 10*time.Second)
		// The sink's order is not the order of arrival: the message is
		// found by its subject.
		found := false
		for _, m := range sink.Messages() {
			if data := m.Data; strings.Contains(data, "Subject: "+tc.greeting) {
				found = true
				if !strings.Contains(data[:strings.Index(data, ";")], tc.want) {
					t.Errorf("after %s: Received %q; want %q", tc.greeting, head(data), tc.want)
				}
			}
		}
		if !found {
			t.Errorf("the message sent after %s is not at the sink", tc.greeting)
		}
	}
}
