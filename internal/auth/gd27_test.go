package auth

import (
	"strings"
	"testing"
)

// TestGd27LongLine: a secrets file or sender-login table with a line over
// 64 KiB said "FILE:LINE: bufio.Scanner: token too long", Go's words; it
// now says what is wrong in plain words, with the line's number.
func TestGd27LongLine(t *testing.T) {
	text := "# accounts\nserver plain alice secret\n" + "server plain bob " + strings.Repeat("x", 70<<10) + "\n"
	_, err := parseSecrets("/etc/relaykeeper/secrets", strings.NewReader(text))
	want := "/etc/relaykeeper/secrets:3: the line is longer than 64 KiB"
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "bufio") {
		t.Errorf("parseSecrets = %v; want %s...", err, want)
	}
	_, err = parseSenderLogins("/etc/relaykeeper/logins", strings.NewReader("a@example.com alice\n"+strings.Repeat("y", 70<<10)+"\n"))
	want = "/etc/relaykeeper/logins:2: the line is longer than 64 KiB"
	if err == nil || !strings.HasPrefix(err.Error(), want) || strings.Contains(err.Error(), "bufio") {
		t.Errorf("parseSenderLogins = %v; want %s...", err, want)
	}
}
