package smtpd

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/crlf"
)

// TestOps28MessageID: the Message-ID the mail log's accept line shows, as
// Postfix's cleanup logs message-id=: the first field's value, unfolded,
// whatever the pieces the text arrives in; the one added to a message
// without one; bounded.
func TestOps28MessageID(t *testing.T) {
	now := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	long := "<" + strings.Repeat("x", 2000) + "@example.org>"
	tests := []struct {
		name, text, want string
	}{
		{"plain", "Subject: a\r\nMessage-ID: <abc@example.org>\r\n\r\nbody\r\n", "<abc@example.org>"},
		{"case and blanks", "message-id :   <abc@example.org>  \r\n\r\nbody\r\n", "<abc@example.org>"},
		{"folded", "Message-ID:\r\n <abc@example.org>\r\nSubject: a\r\n\r\n", "<abc@example.org>"},
		{"folded twice", "Message-ID: <abc\r\n\t@example.org>\r\nSubject: a\r\n\r\n", "<abc @example.org>"},
		{"the first of two", "Message-ID: <one@x>\r\nMessage-ID: <two@x>\r\n\r\n", "<one@x>"},
		{"a later field's fold is not it", "Message-ID: <one@x>\r\nSubject: a\r\n b\r\n\r\n", "<one@x>"},
		{"none: the one added", "Subject: a\r\n\r\nbody\r\n", "<20261207220000.ID1@relay.test>"},
		{"no header at all", "just a body line\r\n", "<20261207220000.ID1@relay.test>"},
		{"hostile", "Message-ID: <a\" client=192.0.2.1 b@x>\r\n\r\n", "<a\" client=192.0.2.1 b@x>"},
		{"long", "Message-ID: " + long + "\r\n\r\n", long[:maxLoggedMessageID]},
	}
	for _, tt := range tests {
		for _, step := range []int{1, 7, len(tt.text)} {
			var out bytes.Buffer
			h := &headerStamp{w: &out, id: "ID1", domain: "relay.test", now: now}
			cw := crlf.NewWriter(h)
			for rest := tt.text; len(rest) > 0; {
				n := min(step, len(rest))
				if _, err := cw.Write([]byte(rest[:n])); err != nil {
					t.Fatal(err)
				}
				rest = rest[n:]
			}
			if err := closeContent(cw, h); err != nil {
				t.Fatal(err)
			}
			if got := h.MessageID(); got != tt.want {
				t.Errorf("%s, in pieces of %d: MessageID() = %q; want %q", tt.name, step, got, tt.want)
			}
		}
	}
}
