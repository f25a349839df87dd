package pop3

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// RFC 1939 section 11: a server that keeps a message with other line endings
// counts each line ending as two octets, so that the sizes of STAT, LIST
// and "+OK N octets" are what RETR sends. A content file written with bare
// LFs (a --filter script that rewrote it with sed or echo, a message put in
// the spool by hand) was listed at its file size, short by one octet a line,
// while RETR sent CRLF lines.
func TestAud620SizeCountsLineEndingsAsTwoOctets(t *testing.T) {
	dir := t.TempDir()
	for _, content := range []string{
		"Subject: lf\n\nline1\nline2\n",
		"Subject: mixed\r\nX-Added: by a filter\n\r\nbody\nno newline at the end",
		"Subject: cr at the end\r\n\r\nbody\r",
	} {
		addMessage(t, dir, content)
	}
	_, addr := startServer(t, Options{SpoolDir: dir, Auth: users})
	c := dial(t, addr)
	c.login("alice", "secret")
	total := 0
	for n := 1; n <= 3; n++ {
		c.PrintfLine("RETR %d", n)
		status, err := c.ReadLine()
		if err != nil || !strings.HasPrefix(status, "+OK ") {
			t.Fatalf("RETR %d: %q, %v", n, status, err)
		}
		sent := 0
		for {
			line, err := c.R.ReadString('\n')
			if err != nil {
				t.Fatalf("RETR %d: %v", n, err)
			}
			if line == ".\r\n" {
				break
			}
			sent += len(line)
		}
		total += sent
		if want := fmt.Sprintf("+OK %d octets", sent); status != want {
			t.Errorf("RETR %d: %q, and it sent %d octets; want %q", n, status, sent, want)
		}
		if got, want := c.cmd(fmt.Sprintf("LIST %d", n)), fmt.Sprintf("+OK %d %d", n, sent); got != want {
			t.Errorf("LIST %d: %q; want %q", n, got, want)
		}
	}
	if got, want := c.cmd("STAT"), fmt.Sprintf("+OK 3 %d", total); got != want {
		t.Errorf("STAT: %q; want %q", got, want)
	}
}

// contentOctets is what writeMessage sends for the content, without the
// dot-stuffing and the closing line.
func TestAud620ContentOctets(t *testing.T) {
	for _, s := range []string{"", "a", "a\n", "a\r\n", "a\r", "\n\n", "a\r\r\n", "a\rb\n", ".x\n..\n",
		strings.Repeat("x", 40000) + "\r\n" + strings.Repeat("y", 32767) + "\r" + "\n" + strings.Repeat("z", 70000)} {
		var b strings.Builder
		w := bufio.NewWriter(&b)
		if err := writeMessage(w, strings.NewReader(s), -1); err != nil {
			t.Fatal(err)
		}
		w.Flush()
		sent := strings.TrimSuffix(b.String(), ".\r\n")
		sent = strings.ReplaceAll("\n"+sent, "\n.", "\n")[1:] // undo the dot-stuffing
		got, err := contentOctets(io.Reader(strings.NewReader(s)))
		if err != nil || got != int64(len(sent)) {
			t.Errorf("contentOctets(%.20q) = %d, %v; writeMessage sends %d", s, got, err, len(sent))
		}
	}
}

// The sizes are remembered between sessions only while the file is the
// same: a filter or an administrator that rewrites it is seen at the next
// login.
func TestAud620SizeFollowsAChangedFile(t *testing.T) {
	dir := t.TempDir()
	id := addMessage(t, dir, "Subject: a\n\nbody\n")
	srv, addr := startServer(t, Options{SpoolDir: dir, Auth: users})
	for i, want := range []string{"+OK 1 20", "+OK 1 26"} {
		c := dial(t, addr)
		c.login("alice", "secret")
		if got := c.cmd("LIST 1"); got != want {
			t.Errorf("login %d: LIST 1 = %q; want %q", i+1, got, want)
		}
		c.ok("QUIT")
		sp := srv.sizes.m
		if len(sp) != 1 {
			t.Errorf("login %d: %d sizes remembered; want 1", i+1, len(sp))
		}
		if err := os.WriteFile(filepath.Join(dir, id+".content"), []byte("Subject: a\n\nbody\nmore\n"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
}
