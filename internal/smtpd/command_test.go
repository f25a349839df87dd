package smtpd

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"net/textproto"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/relaykeeper/relaykeeper/internal/crlf"
)

// rawSession is a client that writes what it is told and reads replies.
type rawSession struct {
	t  *testing.T
	c  net.Conn
	tp *textproto.Reader
}

func rawDial(t *testing.T, addr string) *rawSession {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	s := &rawSession{t: t, c: c, tp: textproto.NewReader(newBufReader(c))}
	s.reply() // greeting
	return s
}

// reply reads one reply, all its lines joined by "|".
func (s *rawSession) reply() string {
	s.t.Helper()
	var lines []string
	for {
		l, err := s.tp.ReadLine()
		if err != nil {
			lines = append(lines, "ERR "+err.Error())
			return strings.Join(lines, "|")
		}
		lines = append(lines, l)
		if len(l) < 4 || l[3] != '-' {
			return strings.Join(lines, "|")
		}
	}
}

func (s *rawSession) send(raw string) {
	s.t.Helper()
	if _, err := s.c.Write([]byte(raw)); err != nil {
		s.t.Fatal(err)
	}
}

// cmd sends one line and returns its reply.
func (s *rawSession) cmd(line string) string {
	s.send(line + "\r\n")
	return s.reply()
}

func TestHeaderStamp(t *testing.T) {
	now := time.Date(2026, 12, 5, 1, 2, 3, 0, time.UTC)
	const id, date = "Message-ID: <20261205010203.ID1@relay.test>\r\n", "Date: Sat, 05 Dec 2026 01:02:03 +0000\r\n"
	for _, tc := range []struct{ in, want string }{
		{"Subject: x\r\nMessage-ID: <a@b>\r\nDate: y\r\n\r\nbody\r\n", "Subject: x\r\nMessage-ID: <a@b>\r\nDate: y\r\n\r\nbody\r\n"},
		{"Subject: x\r\n\r\nbody\r\n", "Subject: x\r\n" + id + date + "\r\nbody\r\n"},
		{"MESSAGE-ID: <a@b>\r\nSubject: x\r\n\tfolded\r\n\r\nbody\r\n", "MESSAGE-ID: <a@b>\r\nSubject: x\r\n\tfolded\r\n" + date + "\r\nbody\r\n"},
		{"date: z\r\n\r\n", "date: z\r\n" + id + "\r\n"},
		{"just a body line\r\nsecond\r\n", id + date + "\r\njust a body line\r\nsecond\r\n"},
		{"Subject: only headers", "Subject: only headers\r\n" + id + date},
		{"Subject: x\nX-Bare: lf\n\nbody", "Subject: x\r\nX-Bare: lf\r\n" + id + date + "\r\nbody\r\n"},
		{"Subject: x\r\nX-Message-ID: no\r\n\r\n.\r\n", "Subject: x\r\nX-Message-ID: no\r\n" + id + date + "\r\n.\r\n"},
	} {
		var out bytes.Buffer
		h := &headerStamp{w: &out, id: "ID1", domain: "relay.test", now: now}
		cw := crlf.NewWriter(h)
		// Byte by byte, the worst case for a line scanner.
		for i := range len(tc.in) {
			cw.Write([]byte{tc.in[i]})
		}
		if err := closeContent(cw, h); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != tc.want {
			t.Errorf("stamp(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

// TestLongLinesInData: body lines far beyond go-smtp's 2,000-octet limit,
// a 5,000-octet header line and a 200 KB header block are accepted whole,
// with one reply after the final dot, and the session goes on.
func TestLongLinesInData(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.MaxMessageSize = 4 << 20 })
	s := rawDial(t, ts.addr)
	if r := s.cmd("EHLO client.test"); !strings.HasPrefix(r, "250-") {
		t.Fatalf("EHLO: %q", r)
	}
	var bigHeader strings.Builder
	for i := range 2000 {
		bigHeader.WriteString("X-Filler-" + strings.Repeat("a", 10) + ": " + strings.Repeat("v", 80) + "\r\n")
		_ = i
	}
	bodies := []string{
		"Subject: html\r\nMessage-ID: <1@t>\r\nDate: Sat, 5 Dec 2026 00:00:00 +0000\r\n\r\n<p>" + strings.Repeat("x", 50000) + "</p>\r\n",
		"Subject: long header " + strings.Repeat("h", 5000) + "\r\n" + bigHeader.String() + "Message-ID: <2@t>\r\nDate: Sat, 5 Dec 2026 00:00:00 +0000\r\n\r\n" + strings.Repeat("QUJD", 250000) + "\r\n",
	}
	for _, body := range bodies {
		for _, c := range []string{"MAIL FROM:<a@example.com>", "RCPT TO:<b@example.net>"} {
			if r := s.cmd(c); !strings.HasPrefix(r, "250 ") {
				t.Fatalf("%s: %q", c, r)
			}
		}
		if r := s.cmd("DATA"); !strings.HasPrefix(r, "354 ") {
			t.Fatalf("DATA: %q", r)
		}
		s.send(body + ".\r\n")
		if r := s.reply(); !strings.HasPrefix(r, "250 2.0.0 OK: queued as ") {
			t.Fatalf("final dot: %q", r)
		}
	}
	if r := s.cmd("NOOP"); !strings.HasPrefix(r, "250 ") {
		t.Errorf("NOOP after the messages: %q; want 250", r)
	}
	msgs := spooled(t, ts.spool)
	if len(msgs) != 2 {
		t.Fatalf("spooled %d; want 2", len(msgs))
	}
	for _, m := range msgs {
		_, content, _ := strings.Cut(m, "+0000\r\n") // after our Received header
		if content != bodies[0] && content != bodies[1] {
			t.Errorf("spooled content (%d octets) is not one of the bodies sent", len(content))
		}
	}
}

// TestOneReplyAfterDot: a message over the size limit, with long lines, is
// refused with one reply after its final dot, and the session stays usable.
func TestOneReplyAfterDot(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.MaxMessageSize = 10000 })
	s := rawDial(t, ts.addr)
	s.cmd("EHLO client.test")
	s.send("MAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n")
	for range 3 {
		if r := s.reply(); !strings.HasPrefix(r, "250 ") && !strings.HasPrefix(r, "354 ") {
			t.Fatalf("reply %q", r)
		}
	}
	// Nothing may come back before the dot: watch while writing.
	got := make(chan string, 1)
	go func() { got <- s.reply() }()
	for range 20 {
		s.send(strings.Repeat("y", 5000) + "\r\nMAIL FROM:<smuggled@example.com>\r\n")
	}
	select {
	case r := <-got:
		t.Fatalf("reply before the final dot: %q", r)
	case <-time.After(200 * time.Millisecond):
	}
	s.send(".\r\n")
	if r := <-got; !strings.HasPrefix(r, "552 5.3.4 ") {
		t.Errorf("reply after the dot: %q; want 552 5.3.4", r)
	}
	if r := s.cmd("RSET"); r != "250 2.0.0 Session reset" {
		t.Errorf("RSET after the refusal: %q; want 250 (no stray replies)", r)
	}
}

// TestBDAT: a chunk passes whole, whatever its lines; a chunk after a
// refused BDAT is skipped, not read as commands.
func TestBDAT(t *testing.T) {
	ts := startServer(t, nil)
	s := rawDial(t, ts.addr)
	s.cmd("EHLO client.test")
	chunk := "Subject: b\r\nMessage-ID: <b@t>\r\nDate: Sat, 5 Dec 2026 00:00:00 +0000\r\n\r\n" + strings.Repeat("z", 9000) + "\r\nQUIT\r\n"
	s.send("BDAT " + itoa(len(chunk)) + " LAST\r\n" + chunk)
	if r := s.reply(); !strings.HasPrefix(r, "503 5.5.1 ") {
		t.Errorf("BDAT before MAIL: %q; want 503 5.5.1", r)
	}
	if r := s.cmd("NOOP"); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("NOOP after a refused BDAT and its chunk: %q", r)
	}
	s.cmd("MAIL FROM:<a@example.com>")
	s.cmd("RCPT TO:<b@example.net>")
	s.send("BDAT " + itoa(len(chunk)) + " LAST\r\n" + chunk)
	if r := s.reply(); !strings.HasPrefix(r, "250 2.0.0 OK: queued") {
		t.Fatalf("BDAT LAST: %q", r)
	}
	msgs := spooled(t, ts.spool)
	if len(msgs) != 1 || !strings.HasSuffix(msgs[0], chunk) {
		t.Errorf("spooled %d messages; want the chunk whole", len(msgs))
	}
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay.test"},
		DNSNames: []string{"relay.test"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
}

// TestSTARTTLS: the command layer does STARTTLS itself; plain text
// pipelined after it is thrown away, the session starts again from EHLO,
// and the session sees TLS.
func TestSTARTTLS(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.TLSConfig = selfSigned(t) })
	s := rawDial(t, ts.addr)
	if r := s.cmd("EHLO client.test"); !strings.Contains(r, "|250-STARTTLS|") {
		t.Fatalf("EHLO without STARTTLS: %q", r)
	}
	if r := s.cmd("STARTTLS\r\nMAIL FROM:<injected@example.com>"); r != "220 2.0.0 Ready to start TLS" {
		t.Fatalf("STARTTLS: %q", r)
	}
	tc := tls.Client(s.c, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	s.c, s.tp = tc, textproto.NewReader(newBufReader(tc))
	if r := s.cmd("MAIL FROM:<a@example.com>"); !strings.HasPrefix(r, "503 5.5.1 ") {
		t.Errorf("MAIL before EHLO after STARTTLS: %q; want 503 5.5.1 (and no reply to the injected MAIL)", r)
	}
	if r := s.cmd("EHLO client.test"); strings.Contains(r, "STARTTLS") || !strings.HasPrefix(r, "250-") {
		t.Errorf("EHLO under TLS: %q; want no STARTTLS", r)
	}
	s.cmd("MAIL FROM:<a@example.com>")
	s.cmd("RCPT TO:<b@example.net>")
	s.cmd("DATA")
	s.send("Subject: t\r\n\r\n" + strings.Repeat("t", 30000) + "\r\n.\r\n")
	if r := s.reply(); !strings.HasPrefix(r, "250 2.0.0 OK") {
		t.Fatalf("DATA under TLS: %q", r)
	}
	if msgs := spooled(t, ts.spool); len(msgs) != 1 || !strings.Contains(msgs[0], "with ESMTPS id") {
		t.Errorf("spooled %d; want one received with ESMTPS", len(msgs))
	}
}

// TestAUTHLineLimits: a SASL response may be 12,288 octets (RFC 4954); a
// longer one ends the exchange without a reply mid-line, with RFC 4954
// section 6's 500 5.5.6.
func TestAUTHLineLimits(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.Auth = nullAuth{}; o.AllowInsecureAuth = true })
	s := rawDial(t, ts.addr)
	s.cmd("EHLO client.test")
	if r := s.cmd("AUTH PLAIN"); r != "334 " {
		t.Fatalf("AUTH PLAIN: %q", r)
	}
	if r := s.cmd(strings.Repeat("QUFB", 3000)); !strings.HasPrefix(r, "535 ") {
		t.Errorf("a 12,000-octet response: %q; want it read and judged (535)", r)
	}
	if r := s.cmd("AUTH PLAIN"); r != "334 " {
		t.Fatalf("AUTH PLAIN: %q", r)
	}
	if r := s.cmd(strings.Repeat("QUFB", 4000)); !strings.HasPrefix(r, "500 5.5.6 ") {
		t.Errorf("a 16,000-octet response: %q; want the exchange ended (500 5.5.6)", r)
	}
	if r := s.cmd("NOOP"); !strings.HasPrefix(r, "250 ") {
		t.Errorf("NOOP: %q", r)
	}
}

func newBufReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }

// nullAuth offers PLAIN and refuses every login.
type nullAuth struct{}

func (nullAuth) Mechanisms(bool) []string { return []string{"PLAIN"} }
func (nullAuth) Server(mech string, _ func(string)) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		return errors.New("no")
	}), nil
}

// FuzzCommandLayer sends arbitrary client input through the command layer
// and go-smtp: every reply must be a well-formed reply line, and nothing
// may panic (go-smtp answers a panic in a command with 421 "Internal
// server error"; one in the command layer would kill the server).
func FuzzCommandLayer(f *testing.F) {
	ts := startServer(f, func(o *Options) { o.MaxMessageSize, o.Myorigin = 100000, "origin.example" })
	for _, s := range []string{
		"EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\nx\r\n.\r\n",
		"EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nBDAT 3 LAST\r\nabc",
		"EHLO c\r\nAUTH PLAIN\r\nAAAA\r\n",
		"HELO [IPv6:::1]\r\nMAIL FROM:<\x00>\r\nRCPT\rTO:<x>\r\n",
		"EHLO c\r\nSTARTTLS\r\nNOOP\r\n",
		"EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nDATA\r\n.\r\nDATA\r\n",
		"EHLO c\r\nMAIL FROM:<\"a >b\"@example.com> SIZE=99999999999999999999 FOO=1\r\nRCPT TO:postmaster NOTIFY=NEVER\r\n",
		"EHLO c\r\nMAIL FROM:<a@example.com>\r\nRCPT TO:<b@example.net>\r\nBDAT 3\r\nabcRSET\r\nBDAT 1 LAST\r\nx",
		// Unqualified senders, qualified with Myorigin.
		"EHLO c\r\nMAIL FROM:<@r.example:\"s c\"> SIZE=10\r\nRCPT TO:<b@example.net>\r\nRSET\r\nMAIL FROM:root\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 64<<10 {
			return
		}
		c, err := net.Dial("tcp", ts.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(300 * time.Millisecond))
		go c.Write(append(in, "\r\n.\r\nQUIT\r\n"...))
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			l := sc.Text()
			if len(l) < 4 || l[0] < '2' || l[0] > '5' || l[1] < '0' || l[1] > '9' || l[2] < '0' || l[2] > '9' || (l[3] != ' ' && l[3] != '-') {
				t.Fatalf("reply line %q is not a reply", l)
			}
			if strings.Contains(l, "Internal server error") {
				t.Fatalf("a panic serving %q: %q", in, l)
			}
		}
	})
}

// TestImplicitTLS: with ImplicitTLS the command layer speaks TLS from the
// first byte, offers no STARTTLS, and the session sees TLS.
func TestImplicitTLS(t *testing.T) {
	ts := startServer(t, func(o *Options) { o.TLSConfig, o.ImplicitTLS = selfSigned(t), true })
	c, err := tls.Dial("tcp", ts.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	s := &rawSession{t: t, c: c, tp: textproto.NewReader(newBufReader(c))}
	if r := s.reply(); !strings.HasPrefix(r, "220 ") {
		t.Fatalf("greeting over TLS: %q", r)
	}
	if r := s.cmd("EHLO client.test"); strings.Contains(r, "STARTTLS") {
		t.Errorf("EHLO over implicit TLS offers STARTTLS: %q", r)
	}
	if r := s.cmd("STARTTLS"); !strings.HasPrefix(r, "554 5.5.1 ") {
		// Postfix's reply when TLS is up, as on its wrapper-mode port.
		t.Errorf("STARTTLS over implicit TLS: %q; want 554 5.5.1", r)
	}
	s.cmd("MAIL FROM:<a@example.com>")
	s.cmd("RCPT TO:<b@example.net>")
	s.cmd("DATA")
	s.send("Subject: t\r\n\r\nx\r\n.\r\n")
	if r := s.reply(); !strings.HasPrefix(r, "250 2.0.0 OK") {
		t.Fatalf("DATA: %q", r)
	}
	if msgs := spooled(t, ts.spool); len(msgs) != 1 || !strings.Contains(msgs[0], "with ESMTPS id") {
		t.Errorf("spooled %d; want one received with ESMTPS", len(msgs))
	}
}

// FuzzSplitPath: splitPath never panics, and what it splits is the input
// again: the path then the parameters.
func FuzzSplitPath(f *testing.F) {
	for _, s := range []string{"<a@example.com> SIZE=1", ` <"a >b"@example.com> X`, "a@example.com BODY=8BITMIME", `<"\">`, "<", "<postmaster>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		path, params, ok := splitPath(s)
		if !ok {
			return
		}
		in := strings.TrimLeft(s, " ")
		if got := path + params; got != in && path+" "+params != in {
			t.Errorf("splitPath(%q) = %q, %q; they do not make the input", s, path, params)
		}
	})
}
