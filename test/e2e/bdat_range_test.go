package e2e

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestBDATSizeOutOfRange: a BDAT whose size does not fit 32 bits got 501
// and the chunk's octets that followed were then read as commands, so
// RSET and NOOP "inside" the chunk ran (rev-bb4's report: a smuggling
// route past a front end that counts the chunk). The session now ends
// with 421, and nothing after the BDAT line is taken for a command.
func TestBDATSizeOutOfRange(t *testing.T) {
	t.Parallel()
	sink := harness.StartSink(t, harness.SinkOptions{})
	r := opsRelay(t, sink.Addr(), "")
	conn, err := net.DialTimeout("tcp", r.addr(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(conn, "EHLO client.e2e.test\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\n"+
		"BDAT 99999999999 LAST\r\nRSET\r\nNOOP\r\nQUIT\r\n")
	var replies []string
	br := bufio.NewReader(conn)
	for {
		line, err := br.ReadString('\n')
		if line != "" && (len(line) < 4 || line[3] == ' ') {
			replies = append(replies, strings.TrimSpace(line))
		}
		if err != nil {
			break
		}
	}
	last := replies[len(replies)-1]
	if !strings.HasPrefix(last, "421 4.3.4") || len(replies) != 5 {
		t.Errorf("replies %q; want greeting, EHLO, MAIL, RCPT, then 421 4.3.4 and the end, nothing for RSET, NOOP or QUIT", replies)
	}
}
