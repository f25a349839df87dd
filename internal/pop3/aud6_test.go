package pop3

import (
	"strconv"
	"testing"
)

// TestAud6ListNumberAsMessageNumber: a LIST or UIDL of one message answers
// with the message-number (RFC 1939 scan listing, RFC 2449 unique-id
// listing), not with the argument as the client typed it: "LIST 01" got
// "+OK 01 SIZE" and "UIDL 002" "+OK 002 UID", which a client that matches
// the number it asked for against the reply's does not recognise.
func TestAud6ListNumberAsMessageNumber(t *testing.T) {
	dir := t.TempDir()
	addMessage(t, dir, msg1)
	id2 := addMessage(t, dir, msg2)
	_, addr := startServer(t, Options{SpoolDir: dir, Auth: users})
	c := dial(t, addr)
	c.login("alice", "secret")
	for _, tt := range []struct{ cmd, want string }{
		{"LIST 01", "+OK 1 " + strconv.Itoa(len(msg1))},
		{"LIST 0002", "+OK 2 " + strconv.Itoa(len(msg2))},
		{"UIDL 002", "+OK 2 " + id2},
	} {
		if got := c.cmd(tt.cmd); got != tt.want {
			t.Errorf("%s: %q; want %q", tt.cmd, got, tt.want)
		}
	}
}
