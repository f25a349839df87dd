package smtpd

import (
	"io"
	"strings"
	"testing"
)

// TestRevEnf2OriginalClientFirst: the relay puts X-Relaykeeper-Original-Client
// on the first line of a message it hands to the content filter, above the
// client's own header section. A client that wrote that field in its own
// message named the original client itself: the last one read won, so a
// spammer passing through amavis had a victim's address banned for its
// spam (or a welcomelisted address spared it). The relay's field, the
// first, is the one read; every copy of the field, folded lines included,
// is removed.
func TestRevEnf2OriginalClientFirst(t *testing.T) {
	msg := "X-Relaykeeper-Original-Client: 203.0.113.66:40000\r\n" +
		"Received: from localhost by filter.example (amavis)\r\n" +
		"Subject: offer\r\n" +
		"X-Relaykeeper-Original-Client: 198.51.100.7:25\r\n" +
		"x-relaykeeper-original-client:\r\n 127.0.0.1:1\r\n" +
		"From: <bob@attacker.example>\r\n" +
		"\r\n" +
		"X-Relaykeeper-Original-Client: in the body stays\r\n"
	r, client, _ := takeOriginalClient(strings.NewReader(msg))
	rest, _ := io.ReadAll(r)
	if client != "203.0.113.66:40000" {
		t.Errorf("original client = %q; want the relay's own field, 203.0.113.66:40000", client)
	}
	want := "Received: from localhost by filter.example (amavis)\r\nSubject: offer\r\nFrom: <bob@attacker.example>\r\n\r\n" +
		"X-Relaykeeper-Original-Client: in the body stays\r\n"
	if string(rest) != want {
		t.Errorf("message handed on:\n%q\nwant\n%q", rest, want)
	}
}
