package deliver

import (
	"context"
	"io"
	"mime/quotedprintable"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestDowngradeToUpstream: toward a real smtp-sink that does not offer
// 8BITMIME, an 8-bit MIME message arrives 7-bit, without BODY=8BITMIME,
// and decodes to what it was; toward one that offers it, as it was. The
// conversion itself is tested in internal/eightbit.
func TestDowngradeToUpstream(t *testing.T) {
	const text = "Gr\xc3\xbc\xc3\x9fe aus K\xc3\xb6ln\r\n"
	const msg = "From: a@example.com\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\n" + text
	for _, no8bit := range []bool{true, false} {
		sink := harness.StartSink(t, harness.SinkOptions{No8BitMIME: no8bit})
		sp, err := spool.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		w, _ := sp.Create(t0)
		io.WriteString(w, msg)
		env := &spool.Envelope{From: "a@example.com", Arrival: t0, BodyType: "8bit", Recipients: rcpts("b@example.net")}
		if err := w.Prepare(env); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(false); err != nil {
			t.Fatal(err)
		}
		s := New(Options{Spool: sp, Upstream: sink.Addr(), Clock: &fakeClock{now: t0}, Connections: 1,
			MinBackoff: time.Minute, MaxBackoff: time.Hour,
			Dial: &remote.Dialer{Options: remote.Options{Helo: "relay.test", ConnectTimeout: 2 * time.Second, ResponseTimeout: 5 * time.Second}}})
		sum, err := s.RunOnce(context.Background())
		if err != nil || sum.Sent != 1 {
			t.Fatalf("no8bit %v: RunOnce = %+v, %v", no8bit, sum, err)
		}
		sink.WaitCount(t, 1, 10*time.Second)
		got := sink.Messages()[0]
		data := strings.ReplaceAll(got.Data, "\n", "\r\n")
		_, body, _ := strings.Cut(data, "\r\n\r\n")
		if no8bit {
			decoded, err := io.ReadAll(quotedprintable.NewReader(strings.NewReader(body)))
			if has8bit([]byte(data)) || strings.Contains(got.MailArgs, "BODY=8BITMIME") || err != nil || string(decoded) != text {
				t.Errorf("to a sink without 8BITMIME: MAIL %q, data %q; want 7 bits that decode to %q", got.MailArgs, data, text)
			}
		} else if !strings.Contains(got.MailArgs, "BODY=8BITMIME") || body != text {
			t.Errorf("to a sink with 8BITMIME: MAIL %q, body %q; want BODY=8BITMIME and the message as it was", got.MailArgs, body)
		}
	}
}

func has8bit(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return true
		}
	}
	return false
}
