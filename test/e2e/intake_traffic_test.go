package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// trafficMessage is one generated message: its envelope, the MAIL
// parameters it needs, and its content with CRLF line endings.
type trafficMessage struct {
	id     string
	from   string
	to     string
	params string
	data   string
}

// genTraffic makes n messages of the kinds programs really send: HTML on
// one line of 5-50 KB, base64 without line breaks, 8-bit text, UTF-8
// addresses and headers, 200 KB header blocks with a 5,000-octet line,
// lines that start with a dot; and big ones 10 MB attachments.
func genTraffic(mode string, n, big int, rng *rand.Rand) []trafficMessage {
	var out []trafficMessage
	for i := range n + big {
		m := trafficMessage{id: fmt.Sprintf("%s-%04d", mode, i), from: "sender@example.org", to: "rcpt@example.net"}
		var h, b strings.Builder
		fmt.Fprintf(&h, "X-Intake-Test: %s\r\nFrom: <%s>\r\nTo: <%s>\r\nDate: Sat, 5 Dec 2026 01:00:00 +0000\r\nMessage-ID: <%s@e2e.test>\r\n",
			m.id, m.from, m.to, m.id)
		kind := i % 5
		if i >= n {
			kind = 5
		}
		switch kind {
		case 0: // HTML on one line
			h.WriteString("Subject: html\r\nMIME-Version: 1.0\r\nContent-Type: text/html; charset=us-ascii\r\n")
			b.WriteString("<html><body>")
			for b.Len() < 5000+rng.IntN(45000) {
				fmt.Fprintf(&b, "<td class=\"c%d\">cell %d</td>", rng.IntN(100), rng.IntN(1e6))
			}
			b.WriteString("</body></html>\r\n.a line that starts with a dot\r\n..and two\r\n")
		case 1: // base64 without line breaks
			h.WriteString("Subject: base64\r\nMIME-Version: 1.0\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n")
			raw := make([]byte, 10000+rng.IntN(100000))
			for j := range raw {
				raw[j] = byte(rng.Uint32())
			}
			b.WriteString(base64.StdEncoding.EncodeToString(raw) + "\r\n")
		case 2: // 8BITMIME
			m.params = " BODY=8BITMIME"
			h.WriteString("Subject: 8bit\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n")
			for range 50 + rng.IntN(200) {
				b.WriteString(strings.Repeat("Grüße aus Köln, ½ € — ", 1+rng.IntN(200)) + "\r\n")
			}
		case 3: // SMTPUTF8
			m.params = " BODY=8BITMIME SMTPUTF8"
			m.from, m.to = "jörg@exämple.org", "björn@example.net"
			h.WriteString("Subject: Grüße, 日本語\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n")
			b.WriteString("Hallo Björn,\r\n" + strings.Repeat("ü", 3000+rng.IntN(9000)) + "\r\n")
		case 4: // a 200 KB header block with a 5,000-octet header line
			h.WriteString("Subject: big header " + strings.Repeat("s", 5000) + "\r\n")
			for j := 0; h.Len() < 200<<10; j++ {
				fmt.Fprintf(&h, "X-Trace-%d: %s\r\n", j, strings.Repeat("t", 60+rng.IntN(60)))
			}
			b.WriteString("small body\r\n")
		case 5: // a 10 MB attachment
			h.WriteString("Subject: attachment\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n")
			raw := make([]byte, 10<<20)
			for j := range raw {
				raw[j] = byte(rng.Uint32())
			}
			enc := base64.StdEncoding.EncodeToString(raw)
			b.WriteString("--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--b1\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n")
			for len(enc) > 0 {
				k := min(76, len(enc))
				b.WriteString(enc[:k] + "\r\n")
				enc = enc[k:]
			}
			b.WriteString("--b1--\r\n")
		}
		m.data = h.String() + "\r\n" + b.String()
		out = append(out, m)
	}
	return out
}

// sendTraffic sends one message over a connection of its own and returns
// the reply to its final dot.
func sendTraffic(addr string, m trafficMessage) (reply, error) {
	c, _, err := dialSMTP(addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	for _, step := range []struct{ cmd, want string }{
		{"EHLO client.e2e.test", "250"}, {"MAIL FROM:<" + m.from + ">" + m.params, "250"},
		{"RCPT TO:<" + m.to + ">", "250"}, {"DATA", "354"},
	} {
		rep, err := c.cmd("%s", step.cmd)
		if err != nil || !strings.HasPrefix(rep.String(), step.want) {
			return rep, fmt.Errorf("%s: %q, %v", step.cmd, rep, err)
		}
	}
	var b strings.Builder
	for _, line := range strings.SplitAfter(m.data, "\r\n") {
		if strings.HasPrefix(line, ".") {
			b.WriteByte('.')
		}
		b.WriteString(line)
	}
	b.WriteString(".\r\n")
	c.conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
	if _, err := c.conn.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	rep, err := c.read()
	c.cmd("QUIT")
	return rep, err
}

// TestIntakeRealWorldTraffic sends a few hundred real-world messages
// through the relay, storing and as a proxy, into a real Postfix, which
// relays them to a scripted server that keeps every octet. Each arrives
// byte-identical from its first header on: only Postfix's and the relay's
// Received headers come before it.
func TestIntakeRealWorldTraffic(t *testing.T) {
	t.Parallel()
	final := harness.NewFakeSMTP(t, harness.Script{
		Capabilities: []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SMTPUTF8", "SIZE 104857600"},
	})
	pf := harness.StartPostfix(t, harness.PostfixOptions{Relayhost: harness.RelayhostFor(final.Addr()), MainCF: []string{
		"smtputf8_enable = yes",
		"message_size_limit = 104857600",
		// Postfix's SMTP client folds lines over 998 octets by default;
		// what is tested here is the relay, not that.
		"smtp_line_length_limit = 0",
		"disable_mime_output_conversion = yes",
		"default_destination_concurrency_limit = 20",
	}})
	store := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", pf.Addr(), "--forward-on-disconnect", "--poll", "1",
		"--size", "50000000", "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	proxy := startRelay(t, "127.0.0.1", "--as-proxy", pf.Addr(), "--size", "50000000",
		"--interface", "127.0.0.1", "--spool-dir", t.TempDir())

	rng := rand.New(rand.NewPCG(10, 1))
	want := map[string]trafficMessage{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	for _, run := range []struct {
		mode string
		addr string
		big  int
	}{{"store", store.addr(), 2}, {"proxy", proxy.addr(), 1}} {
		msgs := genTraffic(run.mode, 120, run.big, rng)
		work := make(chan trafficMessage)
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for m := range work {
					rep, err := sendTraffic(run.addr, m)
					if err != nil || rep.code() != 250 {
						mu.Lock()
						failures = append(failures, fmt.Sprintf("%s: %q, %v", m.id, rep, err))
						mu.Unlock()
					}
				}
			}()
		}
		for _, m := range msgs {
			want[m.id] = m
			work <- m
		}
		close(work)
	}
	wg.Wait()
	for _, f := range failures {
		t.Errorf("sending %s; want 250", f)
	}

	got := map[string][]byte{}
	waitFor(50*time.Second, func() bool {
		for _, tx := range final.Transactions() {
			if tx.Reply == "" {
				continue
			}
			i := bytes.Index(tx.Data, []byte("X-Intake-Test: "))
			if i < 0 {
				continue
			}
			id, _, _ := bytes.Cut(tx.Data[i+len("X-Intake-Test: "):], []byte("\r\n"))
			got[string(id)] = tx.Data
		}
		return len(got) >= len(want)
	})
	for id, m := range want {
		data, ok := got[id]
		if !ok {
			t.Errorf("%s (%d octets) never arrived", id, len(m.data))
			continue
		}
		i := bytes.Index(data, []byte("X-Intake-Test: "))
		if trace := string(data[:i]); strings.Count(trace, "Received: ") != 2 || !strings.Contains(trace, "(relaykeeper)") {
			t.Errorf("%s: arrived with %q before its first header; want Postfix's and the relay's Received headers", id, head(trace))
		}
		if body := data[i:]; string(body) != m.data {
			t.Errorf("%s: arrived with %d octets, not byte-identical to the %d sent; first difference at %d",
				id, len(body), len(m.data), firstDiff(string(body), m.data))
		}
	}
	t.Logf("%d messages sent, %d arrived", len(want), len(got))
}

func firstDiff(a, b string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
