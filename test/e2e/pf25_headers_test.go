package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPF25BlankContinuationStaysInHeader: a header line that holds only
// white space continues the field before it (RFC 5322's obs-FWS; Postfix's
// cleanup reads it so: checked against Postfix 3.7, whose header_checks
// refuse the X-Evil field below with "550 5.7.1 evil header"). The relay
// used to end the header section there: it inserted its Message-ID and Date
// and an empty line before the blank-led line, so the fields after it
// (From:, X-Evil:) became body text, unseen by header_checks and lost to
// every receiver.
func TestPF25BlankContinuationStaysInHeader(t *testing.T) {
	dir := t.TempDir()
	hc := writeFile(t, dir, "header_checks", "/^X-Evil:/ REJECT evil header\n", 0o644)
	r := startPolicyRelay(t, "[policy]\nmynetworks = [\"127.0.0.0/8\"]\nheader_checks = \"pcre:"+hc+"\"\n")

	for _, blank := range []string{" ", "\t", "  \t "} {
		c := mustDial(t, r.addr(), "127.0.0.1")
		mustCmd(t, c, "250", "EHLO client.e2e.test")
		tx, _ := c.send("s@ok.example", []string{"u@dest.example"},
			"Subject: x\r\n"+blank+"\r\nX-Evil: yes\r\n\r\nbody\r\n")
		if got, want := tx.Final.String(), "550 5.7.1 evil header"; got != want {
			t.Errorf("blank line %q before X-Evil: end of data = %q; want %q", blank, got, want)
		}
		c.Close()
	}

	// Accepted, the message keeps its fields in its header section.
	c := mustDial(t, r.addr(), "127.0.0.1")
	mustCmd(t, c, "250", "EHLO client.e2e.test")
	if _, err := c.send("s@ok.example", []string{"u@dest.example"},
		"Subject: x\r\n \r\nFrom: s@ok.example\r\nTo: u@dest.example\r\n\r\nbody\r\n"); err != nil {
		t.Fatalf("send: %v", err)
	}
	var data []byte
	for _, id := range idsIn(spoolFiles(t, r.spool), "content", "envelope") {
		b, err := os.ReadFile(filepath.Join(r.spool, id+".content"))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "s@ok.example\r\nTo:") {
			data = b
		}
	}
	if data == nil {
		t.Fatalf("the accepted message is not in the spool: %v", spoolFiles(t, r.spool))
	}
	header, _, _ := strings.Cut(string(data), "\r\n\r\n")
	for _, f := range []string{"\r\nSubject: x\r\n \r\nFrom: s@ok.example\r\nTo: u@dest.example\r\n", "\r\nMessage-ID: <", "\r\nDate: "} {
		if !strings.Contains(header, f) {
			t.Errorf("stored header section lacks %q:\n%s", f, header)
		}
	}
}

// TestPF25CheckReplyASCII: a header_checks or body_checks reply that
// inserts part of the message ($1) is sent in US-ASCII unless the client
// declared SMTPUTF8 (RFC 5321 section 4.2's textstring; RFC 6531 section
// 3.7.4): each octet of a UTF-8 character becomes a space, as from Postfix
// 3.7 ("eight[caf  ]"). The relay sent the sender's 8-bit octets as they
// came.
func TestPF25CheckReplyASCII(t *testing.T) {
	dir := t.TempDir()
	hc := writeFile(t, dir, "header_checks", "/^X-8: (.*)/ REJECT eight[$1]\n", 0o644)
	bc := writeFile(t, dir, "body_checks", "/^body8 (.*)/ REJECT b8[$1]\n", 0o644)
	r := startPolicyRelay(t, "[policy]\nmynetworks = [\"127.0.0.0/8\"]\nheader_checks = \"pcre:"+hc+"\"\nbody_checks = \"pcre:"+bc+"\"\n")
	for _, tc := range []struct{ param, msg, want string }{
		{"", "X-8: caf\u00e9!\r\n\r\nx\r\n", "550 5.7.1 eight[caf  !]"},
		{"", "Subject: x\r\n\r\nbody8 \u20ac\r\n", "550 5.7.1 b8[   ]"},
		{" SMTPUTF8", "X-8: caf\u00e9!\r\n\r\nx\r\n", "550 5.7.1 eight[caf\u00e9!]"},
	} {
		c := mustDial(t, r.addr(), "127.0.0.1")
		mustCmd(t, c, "250", "EHLO client.e2e.test")
		mustCmd(t, c, "250", "MAIL FROM:<s@ok.example>%s", tc.param)
		mustCmd(t, c, "250", "RCPT TO:<u@dest.example>")
		mustCmd(t, c, "354", "DATA")
		rep, err := c.cmd("%s.", tc.msg)
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.String(); got != tc.want {
			t.Errorf("MAIL%s, message %q: end of data = %q; want %q", tc.param, tc.msg, got, tc.want)
		}
		c.Close()
	}
}
