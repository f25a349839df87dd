package smtpd

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestShut22ShutdownWaitsForSessions: Shutdown, its grace over, cuts a
// session in the middle of its message text (the client hears 421 4.3.2)
// and returns only once the session has ended: its disconnect is logged
// and its content file is gone by then. It used to return at the end of
// the grace with the session still reading, for the process to exit
// under it.
func TestShut22ShutdownWaitsForSessions(t *testing.T) {
	ts := startServer(t, nil)
	c, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	io.WriteString(c, "EHLO client.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("before 354: %v", err)
		}
		if strings.HasPrefix(line, "354 ") {
			break
		}
	}
	io.WriteString(c, "Subject: cut\r\n\r\nsome text\r\n")
	time.Sleep(100 * time.Millisecond)

	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		done <- ts.srv.Shutdown(ctx)
	}()
	line, err := br.ReadString('\n')
	if !strings.HasPrefix(line, "421 4.3.2 ") {
		t.Errorf("after the grace: %q, %v; want 421 4.3.2", line, err)
	}
	c.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return")
	}
	if !strings.Contains(ts.log.String(), " disconnect ") {
		t.Errorf("Shutdown returned before the session ended (no disconnect line):\n%s", ts.log.String())
	}
	ents, _ := os.ReadDir(ts.spool.Dir())
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), ".") {
			t.Errorf("spool file %s after Shutdown; want the cut transaction's files gone", e.Name())
		}
	}
}
