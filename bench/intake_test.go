package bench

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/smtpd"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// BenchmarkIntake is the SMTP listener's cost per message, from MAIL to the
// reply after the final dot, over one loopback session, for a 1 MB message
// of 50 KB lines (HTML on one line), one of 998-octet lines, and a 4 KB one
// of 78-octet lines (size=4k: per-message costs more than per-octet). The spool's
// fsyncs are off: what is measured is the reading of the client (the
// command layer, go-smtp, CRLF normalising, the header stamp), not the disk.
//
//	go test -run XXX -bench Intake -benchmem ./bench/
func BenchmarkIntake(b *testing.B) {
	for _, tc := range []struct {
		name           string
		lineLen, bytes int
	}{{"line=50000", 50000, 1 << 20}, {"line=998", 998, 1 << 20}, {"size=4k", 78, 4 << 10}} {
		lineLen := tc.lineLen
		b.Run(tc.name, func(b *testing.B) {
			sp, err := spool.Open(b.TempDir(), nil)
			if err != nil {
				b.Fatal(err)
			}
			sp.SetSync(false)
			srv := smtpd.New(smtpd.Options{Domain: "bench.test", Spool: sp, MailLog: maillog.New(io.Discard),
				MaxMessageSize: 4 << 20, IdleTimeout: 30 * time.Second})
			l, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go srv.Serve(l)
			defer srv.Shutdown(context.Background())
			c, err := net.Dial("tcp", l.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			tp := textproto.NewReader(bufio.NewReader(c))
			expect := func(code int) {
				if _, _, err := tp.ReadResponse(code); err != nil {
					b.Fatal(err)
				}
			}
			expect(220)
			io.WriteString(c, "EHLO bench.client\r\n")
			expect(250)
			line := strings.Repeat("x", lineLen-2) + "\r\n"
			msg := "Subject: bench\r\nMessage-ID: <b@bench>\r\nDate: Sat, 5 Dec 2026 00:00:00 +0000\r\n\r\n" +
				strings.Repeat(line, tc.bytes/lineLen) + ".\r\n"
			text := []byte(msg) // not converted in the loop: the client's cost is not the relay's
			b.SetBytes(int64(len(msg)))
			b.ResetTimer()
			for range b.N {
				io.WriteString(c, "MAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
				expect(250)
				expect(250)
				expect(354)
				c.Write(text)
				expect(250)
			}
		})
	}
}
