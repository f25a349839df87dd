package remote_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// gmailSpam is Gmail's refusal of a message it takes for spam, as it
// sends it: three lines, each with the code and enhanced code.
var gmailSpam = []string{
	"550-5.7.1 [192.0.2.1      12] Our system has detected that this message is",
	"550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,",
	"550 5.7.1 this message has been blocked. 5b1f17b1804b1-4a8f2a - gsmtp",
}

func message(to ...string) *remote.Message {
	body := "Subject: test\r\n\r\nhello\r\n.leading dot\r\n"
	return &remote.Message{From: "sender@example.org", To: to, Body: strings.NewReader(body), Size: int64(len(body))}
}

func dial(t *testing.T, addr string, opts remote.Options) *remote.Conn {
	t.Helper()
	if opts.ConnectTimeout == 0 {
		opts.ConnectTimeout = 5 * time.Second
	}
	if opts.ResponseTimeout == 0 {
		opts.ResponseTimeout = 5 * time.Second
	}
	if opts.DataTimeout == 0 {
		opts.DataTimeout = 5 * time.Second
	}
	c, err := remote.Dial(context.Background(), addr, opts)
	if err != nil {
		t.Fatalf("Dial(%s): %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestMultiLineReplies: every line of a multi-line reply arrives in the
// reply, with the first line's enhanced code, at each stage.
func TestMultiLineReplies(t *testing.T) {
	f := harness.NewFakeSMTP(t, harness.Script{
		Greeting:  harness.Response{Reply: "220-fake.test ESMTP\r\n220-second greeting line\r\n220 third"},
		RcptFor:   map[string]harness.Response{"spam@gmail.test": {Reply: strings.Join(gmailSpam, "\r\n")}},
		EndOfData: harness.Response{Reply: "250-2.0.0 first\r\n250 2.0.0 Ok: queued as X"},
	})
	c := dial(t, f.Addr(), remote.Options{})
	if got, want := c.Greet.Lines, []string{"fake.test ESMTP", "second greeting line", "third"}; !cmp.Equal(got, want) {
		t.Errorf("Greet.Lines = %q; want %q", got, want)
	}
	for _, ext := range []string{"PIPELINING", "8BITMIME", "ENHANCEDSTATUSCODES", "SIZE"} {
		if _, ok := c.Extension(ext); !ok {
			t.Errorf("Extension(%q) = false; want the multi-line EHLO reply read", ext)
		}
	}
	res, err := c.Send(context.Background(), message("ok@gmail.test", "spam@gmail.test"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	want, _ := reply.Parse(gmailSpam)
	if diff := cmp.Diff(want, res.RcptReply(1)); diff != "" {
		t.Errorf("RcptReply(1) (-want +got):\n%s", diff)
	}
	if got, want := res.RcptReply(1).String(), strings.Join(gmailSpam, " "); got != want {
		t.Errorf("RcptReply(1).String() = %q; want %q", got, want)
	}
	if !res.Accepted(0) || res.Accepted(1) {
		t.Errorf("Accepted(0), Accepted(1) = %v, %v; want true, false", res.Accepted(0), res.Accepted(1))
	}
	if got, want := res.Data, (reply.Reply{Code: 250, Enhanced: "2.0.0", Lines: []string{"2.0.0 first", "2.0.0 Ok: queued as X"}}); !cmp.Equal(got, want) {
		t.Errorf("Data = %+v; want %+v", got, want)
	}
	txs := f.WaitTransactions(t, 1, 5*time.Second)
	if got, want := string(txs[0].Data), "Subject: test\r\n\r\nhello\r\n.leading dot\r\n"; got != want {
		t.Errorf("server got %q; want %q (dot-stuffing undone)", got, want)
	}
}

// TestMalformedReply: a reply whose lines change code breaks the session.
func TestMalformedReply(t *testing.T) {
	f := harness.NewFakeSMTP(t, harness.Script{
		Mail: harness.Response{Reply: "250-2.1.0 ok\r\n550 5.0.0 other code"},
	})
	c := dial(t, f.Addr(), remote.Options{})
	_, err := c.Send(context.Background(), message("a@example.net"))
	var re *remote.Error
	if !errors.As(err, &re) || re.Stage != "mail" || !re.Temporary() {
		t.Fatalf("Send = %v; want a temporary remote.Error at mail", err)
	}
	if !c.Broken() {
		t.Errorf("Broken() = false after a malformed reply; want true")
	}
}

// newScript starts a one-connection SMTP server driven step by step by
// serve, for what FakeSMTP cannot do: see how commands are batched, and
// STARTTLS.
func newScript(t *testing.T, serve func(s *scriptConn)) string {
	t.Helper()
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		nc.SetDeadline(time.Now().Add(10 * time.Second))
		serve(&scriptConn{t: t, nc: nc})
	}()
	t.Cleanup(func() { ln.Close(); <-done })
	return ln.Addr().String()
}

type scriptConn struct {
	t   *testing.T
	nc  net.Conn
	buf []byte
}

// read returns the next n command lines, without their CRLF.
func (s *scriptConn) read(n int) []string {
	var lines []string
	b := make([]byte, 4096)
	for len(lines) < n {
		if i := strings.Index(string(s.buf), "\r\n"); i >= 0 {
			lines = append(lines, string(s.buf[:i]))
			s.buf = s.buf[i+2:]
			continue
		}
		m, err := s.nc.Read(b)
		if err != nil {
			s.t.Errorf("server: reading line %d of %d: %v (got %q)", len(lines)+1, n, err, lines)
			return lines
		}
		s.buf = append(s.buf, b[:m]...)
	}
	return lines
}

// buffered reports whether the client sent more than has been read.
func (s *scriptConn) buffered() bool { return len(s.buf) > 0 }

func (s *scriptConn) send(lines ...string) {
	s.nc.Write([]byte(strings.Join(lines, "\r\n") + "\r\n"))
}

func (s *scriptConn) expect(want ...string) {
	s.t.Helper()
	got := s.read(len(want))
	if !cmp.Equal(got, want) {
		s.t.Errorf("server got %q; want %q", got, want)
	}
}

// TestPipelining: with PIPELINING, MAIL, every RCPT and DATA go in one
// batch before any reply is read (RFC 2920); the server here answers
// nothing until it has all of them, so a client that waited would time
// out. A refused MAIL with a 354 anyway ends the empty transaction with
// "." and RSET.
func TestPipelining(t *testing.T) {
	addr := newScript(t, func(s *scriptConn) {
		s.send("220 script.test ESMTP")
		s.expect("EHLO client.test")
		s.send("250-script.test", "250 PIPELINING")
		s.expect("MAIL FROM:<sender@example.org>", "RCPT TO:<a@example.net>", "RCPT TO:<b@example.net>", "DATA")
		s.send("250 2.1.0 ok", "550 5.1.1 no such user", "250 2.1.5 ok", "354 go ahead")
		body := s.read(4)
		if want := []string{"Subject: test", "", "hello", "..leading dot"}; !cmp.Equal(body, want) {
			t.Errorf("server got body %q; want %q", body, want)
		}
		s.expect(".")
		s.send("250 2.0.0 queued")
		// The second message: MAIL refused, yet the server says 354.
		s.expect("MAIL FROM:<sender@example.org>", "RCPT TO:<c@example.net>", "DATA")
		s.send("452 4.3.1 no room", "503 5.5.1 no MAIL", "354 go ahead anyway")
		s.expect(".")
		s.send("554 5.5.1 no valid recipients")
		s.expect("RSET")
		s.send("250 2.0.0 ok")
		s.expect("QUIT")
		s.send("221 bye")
	})
	c := dial(t, addr, remote.Options{Helo: "client.test", ResponseTimeout: 2 * time.Second})
	res, err := c.Send(context.Background(), message("a@example.net", "b@example.net"))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.Accepted(0) || !res.Accepted(1) {
		t.Errorf("Accepted(0), Accepted(1) = %v, %v; want false, true", res.Accepted(0), res.Accepted(1))
	}
	if got := res.RcptReply(0).String(); got != "550 5.1.1 no such user" {
		t.Errorf("RcptReply(0) = %q; want the 550", got)
	}
	res, err = c.Send(context.Background(), message("c@example.net"))
	if err != nil {
		t.Fatalf("second Send: %v", err)
	}
	if res.Accepted(0) || res.RcptReply(0).Code != 452 {
		t.Errorf("second Send: RcptReply(0) = %q; want the refused MAIL's 452", res.RcptReply(0))
	}
	if c.Broken() {
		t.Errorf("Broken() after a refused transaction; want the session reusable")
	}
	c.Quit()
}

// TestLockStep: without PIPELINING, each command waits for its reply:
// the server checks that nothing more was sent before it answers.
func TestLockStep(t *testing.T) {
	addr := newScript(t, func(s *scriptConn) {
		s.send("220 script.test ESMTP")
		s.expect("EHLO [127.0.0.1]")
		s.send("250 script.test")
		for _, cmd := range []string{"MAIL FROM:<sender@example.org>", "RCPT TO:<a@example.net>", "DATA"} {
			s.expect(cmd)
			time.Sleep(20 * time.Millisecond) // time for a wrongly pipelined command to arrive
			if s.buffered() {
				t.Errorf("server: the client sent more after %q before its reply", cmd)
			}
			s.send(map[bool]string{true: "354 go ahead", false: "250 ok"}[cmd == "DATA"])
		}
		s.read(4)
		s.expect(".")
		s.send("250 queued")
	})
	c := dial(t, addr, remote.Options{})
	res, err := c.Send(context.Background(), message("a@example.net"))
	if err != nil || !res.Accepted(0) {
		t.Fatalf("Send = %+v, %v; want accepted", res, err)
	}
}

// TestTimeouts: a server that stops answering fails the attempt
// temporarily once the timeout for that stage has passed, and the session
// is not used again.
func TestTimeouts(t *testing.T) {
	t.Run("greeting", func(t *testing.T) {
		f := harness.NewFakeSMTP(t, harness.Script{Greeting: harness.Response{Delay: 5 * time.Second}})
		start := time.Now()
		_, err := remote.Dial(context.Background(), f.Addr(), remote.Options{ConnectTimeout: 200 * time.Millisecond})
		var re *remote.Error
		if !errors.As(err, &re) || re.Stage != "greeting" || !re.Temporary() {
			t.Fatalf("Dial = %v; want a temporary remote.Error at greeting", err)
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			t.Errorf("Dial = %v; want a timeout", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Dial took %v; want about the 200ms timeout", d)
		}
	})
	t.Run("end of data", func(t *testing.T) {
		f := harness.NewFakeSMTP(t, harness.Script{EndOfData: harness.Response{Delay: 5 * time.Second}})
		c := dial(t, f.Addr(), remote.Options{DataTimeout: 200 * time.Millisecond})
		_, err := c.Send(context.Background(), message("a@example.net"))
		var re *remote.Error
		if !errors.As(err, &re) || re.Stage != "end of data" || !re.Temporary() {
			t.Fatalf("Send = %v; want a temporary remote.Error at end of data", err)
		}
		if !c.Broken() {
			t.Errorf("Broken() = false after a timeout; want true")
		}
		if got := re.AsReply(); got.Code != 451 || got.Enhanced != "4.4.1" {
			t.Errorf("AsReply() = %q; want a local 451 4.4.1", got)
		}
	})
	t.Run("rcpt, cancelled", func(t *testing.T) {
		f := harness.NewFakeSMTP(t, harness.Script{Rcpt: harness.Response{Delay: 5 * time.Second}})
		c := dial(t, f.Addr(), remote.Options{})
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Send(ctx, message("a@example.net"))
		var re *remote.Error
		if !errors.As(err, &re) || re.Stage != "rcpt" || !re.Temporary() {
			t.Fatalf("Send = %v; want a temporary remote.Error at rcpt", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("Send took %v after its context ended; want it cut short", d)
		}
	})
}

// TestResetMidData: a connection reset while the content is sent fails
// the attempt temporarily and breaks the session.
func TestResetMidData(t *testing.T) {
	f := harness.NewFakeSMTP(t, harness.Script{Content: harness.Response{After: 1000, Fault: harness.Reset}})
	c := dial(t, f.Addr(), remote.Options{})
	body := "Subject: big\r\n\r\n" + strings.Repeat(strings.Repeat("x", 998)+"\r\n", 4000)
	_, err := c.Send(context.Background(), &remote.Message{From: "s@example.org", To: []string{"a@example.net"},
		Body: strings.NewReader(body), Size: int64(len(body))})
	var re *remote.Error
	if !errors.As(err, &re) || (re.Stage != "data" && re.Stage != "end of data") || !re.Temporary() {
		t.Fatalf("Send = %v; want a temporary remote.Error at data or end of data", err)
	}
	if re.Reply.Code != 0 {
		t.Errorf("Error.Reply = %q; want none: the server never replied", re.Reply)
	}
	if !c.Broken() {
		t.Errorf("Broken() = false after a reset; want true")
	}
	if txs := f.WaitTransactions(t, 1, 5*time.Second); txs[0].Accepted() {
		t.Errorf("server accepted the cut message: %+v", txs[0])
	}
}

func serverTLS(t *testing.T) (*tls.Config, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, BasicConstraintsValid: true, IsCA: true,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, pool
}

// TestStartTLS: the client upgrades when offered, says EHLO again over
// TLS and forgets the plain-text extensions; it refuses a server that
// pushes data before the handshake (CVE-2011-0411), and a required TLS
// that is not offered.
func TestStartTLS(t *testing.T) {
	cfg, pool := serverTLS(t)
	t.Run("upgrade", func(t *testing.T) {
		addr := newScript(t, func(s *scriptConn) {
			s.send("220 script.test ESMTP")
			s.expect("EHLO [127.0.0.1]")
			s.send("250-script.test", "250-PLAINONLY", "250 STARTTLS")
			s.expect("STARTTLS")
			s.send("220 2.0.0 ready")
			tc := tls.Server(s.nc, cfg)
			if err := tc.Handshake(); err != nil {
				t.Errorf("server handshake: %v", err)
				return
			}
			s.nc = tc
			s.expect("EHLO [127.0.0.1]")
			s.send("250-script.test", "250 AUTH PLAIN")
			s.expect("QUIT")
			s.send("221 bye")
		})
		c := dial(t, addr, remote.Options{TLS: remote.TLSOpportunistic, TLSConfig: &tls.Config{RootCAs: pool}})
		if !c.TLS() {
			t.Errorf("TLS() = false; want true after STARTTLS")
		}
		if _, ok := c.Extension("PLAINONLY"); ok {
			t.Errorf("an extension from before TLS survived the second EHLO")
		}
		if _, ok := c.Extension("AUTH"); !ok {
			t.Errorf("Extension(AUTH) = false; want the EHLO reply after TLS")
		}
		c.Quit()
	})
	t.Run("injection", func(t *testing.T) {
		addr := newScript(t, func(s *scriptConn) {
			s.send("220 script.test ESMTP")
			s.expect("EHLO [127.0.0.1]")
			s.send("250-script.test", "250 STARTTLS")
			s.expect("STARTTLS")
			s.send("220 2.0.0 ready", "250 injected before the handshake")
		})
		_, err := remote.Dial(context.Background(), addr, remote.Options{TLS: remote.TLSOpportunistic,
			TLSConfig: &tls.Config{RootCAs: pool}, ConnectTimeout: 2 * time.Second, ResponseTimeout: 2 * time.Second})
		var re *remote.Error
		if !errors.As(err, &re) || re.Stage != "starttls" {
			t.Fatalf("Dial = %v; want a remote.Error at starttls", err)
		}
	})
	t.Run("required, not offered", func(t *testing.T) {
		f := harness.NewFakeSMTP(t, harness.Script{})
		_, err := remote.Dial(context.Background(), f.Addr(), remote.Options{TLS: remote.TLSRequired, ConnectTimeout: 2 * time.Second})
		var re *remote.Error
		if !errors.As(err, &re) || re.Stage != "starttls" || !re.Temporary() {
			t.Fatalf("Dial = %v; want a temporary remote.Error at starttls", err)
		}
	})
	t.Run("bad certificate", func(t *testing.T) {
		addr := newScript(t, func(s *scriptConn) {
			s.send("220 script.test ESMTP")
			s.expect("EHLO [127.0.0.1]")
			s.send("250-script.test", "250 STARTTLS")
			s.expect("STARTTLS")
			s.send("220 2.0.0 ready")
			tls.Server(s.nc, cfg).Handshake()
		})
		// No RootCAs: the self-signed certificate is not trusted.
		_, err := remote.Dial(context.Background(), addr, remote.Options{TLS: remote.TLSRequired, ConnectTimeout: 2 * time.Second})
		var re *remote.Error
		if !errors.As(err, &re) || re.Stage != "tls handshake" || !re.Temporary() {
			t.Fatalf("Dial = %v; want a temporary remote.Error at tls handshake", err)
		}
	})
}

// TestRefusedGreeting: a 554 greeting is temporary, as with Postfix's
// default smtp_skip_5xx_greeting (the mail waits, and the client of a
// proxy hears a 454 that names the reply), and permanent with
// FailOn5xxGreeting; a 421 is never permanent.
func TestRefusedGreeting(t *testing.T) {
	for _, tt := range []struct {
		greeting string
		fail     bool
		perm     bool
		heard    string
	}{
		{"554 5.7.1 go away", false, false, "454 4.7.0 upstream greeting failed: 554 5.7.1 go away"},
		{"554 5.7.1 go away", true, true, "554 5.7.1 go away"},
		{"421 4.3.2 busy", false, false, "421 4.3.2 busy"},
		{"421 4.3.2 busy", true, false, "421 4.3.2 busy"},
	} {
		f := harness.NewFakeSMTP(t, harness.Script{Greeting: harness.Response{Reply: tt.greeting}})
		_, err := remote.Dial(context.Background(), f.Addr(), remote.Options{ConnectTimeout: 2 * time.Second, FailOn5xxGreeting: tt.fail})
		var re *remote.Error
		if !errors.As(err, &re) || re.Stage != "greeting" || re.Perm != tt.perm || re.Reply.String() != tt.greeting {
			t.Errorf("Dial with greeting %q (fail %v) = %v; want a remote.Error at greeting with Perm %v and the reply", tt.greeting, tt.fail, err, tt.perm)
		}
		if err != nil && re != nil && re.AsReply().String() != tt.heard {
			t.Errorf("AsReply() = %q; want %q", re.AsReply(), tt.heard)
		}
	}
}

// TestReply421Breaks: a 421 reply says the server is closing the session
// (RFC 5321 section 3.8), so the session carries no more messages and is
// not said QUIT to.
func TestReply421Breaks(t *testing.T) {
	sink := harness.StartSink(t, harness.SinkOptions{Reply421: []string{"MAIL"}})
	c := dial(t, sink.Addr(), remote.Options{})
	if c.Broken() {
		t.Fatal("Broken() = true before any transaction")
	}
	rep, err := c.Mail(message("a@example.net"))
	if err != nil || rep.Code != 421 {
		t.Fatalf("Mail = %v, %v; want the sink's 421", rep, err)
	}
	if !c.Broken() {
		t.Error("Broken() = false after a 421 reply; want true")
	}
}

// TestTwoRepliesToTheFinalDot: a server that answered in the middle of the
// text and again after the final dot gave two verdicts. Before, the client
// took the first and kept the session, whose every later command then read
// the reply of the one before it: the next message's MAIL heard the old
// "550", its DATA a "250", and was taken for delivered.
func TestTwoRepliesToTheFinalDot(t *testing.T) {
	addr := newScript(t, func(s *scriptConn) {
		upToTheDot(s)
		s.send("250 2.0.0 early", "550 5.7.1 rejected after all")
	})
	c := dial(t, addr, remote.Options{})
	res, err := c.Send(context.Background(), message("a@example.net"))
	if err == nil || res.Accepted(0) {
		t.Errorf("Send = %+v, %v; want an error, the message not accepted", res, err)
	}
	if !c.Broken() {
		t.Error("Broken() = false; want the session out of step, not to be used again")
	}
	c.Quit()
}

// TestUnsolicitedBreaks: a server that sends a reply nobody asked for
// after the transaction (the second half of an answer given early), or
// that ends an idle session, leaves a session that must not carry another
// message: its next MAIL would read that reply. Before, Broken() said
// false and the next message's MAIL heard "550 5.7.1 late" (then RCPT the
// reply to MAIL, and DATA a 250).
func TestUnsolicitedBreaks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		after func(s *scriptConn)
	}{
		{"a late reply", func(s *scriptConn) { s.send("550 5.7.1 late") }},
		{"the end of the session", func(s *scriptConn) { s.nc.Close() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent := make(chan struct{})
			addr := newScript(t, func(s *scriptConn) {
				upToTheDot(s)
				s.send("250 2.0.0 queued")
				time.Sleep(50 * time.Millisecond) // the client has read its reply
				tc.after(s)
				close(sent)
			})
			c := dial(t, addr, remote.Options{})
			res, err := c.Send(context.Background(), message("a@example.net"))
			if err != nil || !res.Accepted(0) {
				t.Fatalf("Send = %+v, %v; want accepted", res, err)
			}
			<-sent
			if !waitBroken(c) {
				t.Error("Broken() = false; want true, the session out of step")
			}
		})
	}
}

// waitBroken polls c.Broken() for what the server sent to arrive.
func waitBroken(c *remote.Conn) bool {
	for range 100 {
		if c.Broken() {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// upToTheDot plays the server's part of message("a@example.net") without
// PIPELINING, up to its final dot.
func upToTheDot(s *scriptConn) {
	upToTheText(s)
	s.read(4)
	s.expect(".")
}

// upToTheText plays the server's part of a message from sender@example.org
// to a@example.net without PIPELINING, up to its 354.
func upToTheText(s *scriptConn) {
	s.send("220 script.test ESMTP")
	s.expect("EHLO [127.0.0.1]")
	s.send("250 script.test")
	s.expect("MAIL FROM:<sender@example.org>")
	s.send("250 ok")
	s.expect("RCPT TO:<a@example.net>")
	s.send("250 ok")
	s.expect("DATA")
	s.send("354 go ahead")
}

// TestLongReplyLine: a reply line longer than 2,048 octets is kept to that
// length, and the rest of it read and dropped, as Postfix's smtp client
// truncates one; the session goes on. Before, a line was read whole into
// memory, however long: a server (any MX) that sent an endless one grew
// the relay until it was killed.
func TestLongReplyLine(t *testing.T) {
	addr := newScript(t, func(s *scriptConn) {
		s.send("220-script.test " + strings.Repeat("x", 1<<20))
		s.send("220 script.test ESMTP")
		s.expect("EHLO [127.0.0.1]")
		s.send("250 script.test")
		s.expect("QUIT")
		s.send("221 bye")
	})
	c := dial(t, addr, remote.Options{})
	if n := len(c.Greet.Wire()[0]); n > 2048 {
		t.Errorf("the greeting's first line is %d octets; want at most 2048", n)
	}
	if got := c.Greet.Lines[1]; got != "script.test ESMTP" {
		t.Errorf("the greeting's second line = %q; want it whole after the long one", got)
	}
	c.Quit()
}

// TestSendAhead: the next message's MAIL, RCPT and DATA go in the same
// write as the final dot (RFC 2920 section 3.1), and the next Send with
// the same commands sends only the content. The server answers nothing
// until it has the whole group, so a client that waited would time out.
func TestSendAhead(t *testing.T) {
	body := []string{"Subject: test", "", "hello", "..leading dot", "."}
	addr := newScript(t, func(s *scriptConn) {
		s.send("220 script.test ESMTP")
		s.expect("EHLO [127.0.0.1]")
		s.send("250-script.test", "250 PIPELINING")
		s.expect("MAIL FROM:<sender@example.org>", "RCPT TO:<a@example.net>", "DATA")
		s.send("250 2.1.0 ok", "250 2.1.5 ok", "354 go ahead")
		s.expect(append(body, "MAIL FROM:<sender@example.org>", "RCPT TO:<b@example.net>", "DATA")...)
		s.send("250 2.0.0 queued as 1", "250 2.1.0 ok", "250 2.1.5 ok", "354 go ahead")
		s.expect(append(body, "MAIL FROM:<sender@example.org>", "RCPT TO:<c@example.net>", "DATA")...)
		// The second message is refused at its dot; the third's
		// transaction has begun all the same, with no RSET between.
		s.send("554 5.7.1 no", "250 2.1.0 ok", "550 5.1.1 unknown", "503 5.5.1 no valid recipients")
		s.expect("RSET")
		s.send("250 2.0.0 ok")
		s.expect("QUIT")
		s.send("221 bye")
	})
	c := dial(t, addr, remote.Options{})
	ctx := context.Background()
	res, err := c.SendAhead(ctx, message("a@example.net"), message("b@example.net"))
	if err != nil || !res.Accepted(0) {
		t.Fatalf("first SendAhead = %+v, %v; want accepted", res, err)
	}
	if !c.Waiting() {
		t.Errorf("Waiting() = false after the next message's 354")
	}
	res, err = c.SendAhead(ctx, message("b@example.net"), message("c@example.net"))
	if err != nil || res.Accepted(0) || res.RcptReply(0).Code != 554 {
		t.Fatalf("second SendAhead = %+v, %v; want refused with the 554", res, err)
	}
	if c.Waiting() {
		t.Errorf("Waiting() after the next message's DATA was refused")
	}
	res, err = c.Send(ctx, message("c@example.net"))
	if err != nil || res.RcptReply(0).Code != 550 {
		t.Fatalf("third Send = %+v, %v; want the RCPT's 550", res, err)
	}
	if c.Broken() {
		t.Errorf("Broken() after refused transactions; want the session reusable")
	}
	c.Quit()
}

// TestSendAheadAbandoned: a session whose server waits for content begun
// ahead is closed, never given a final dot, when the next Send is another
// message or the session ends: the server delivers nothing.
func TestSendAheadAbandoned(t *testing.T) {
	for _, tc := range []struct {
		name string
		then func(c *remote.Conn) error
	}{
		{"other message", func(c *remote.Conn) error {
			_, err := c.Send(context.Background(), message("other@example.net"))
			return err
		}},
		{"quit", func(c *remote.Conn) error { c.Quit(); return errors.New("closed") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := make(chan []string, 1)
			addr := newScript(t, func(s *scriptConn) {
				aheadOpening(s)
				s.send("250 queued", "250 ok", "250 ok", "354 go ahead")
				// Whatever comes now is the content of b's message.
				var rest []string
				b := make([]byte, 4096)
				for {
					n, err := s.nc.Read(b)
					rest = append(rest, string(b[:n]))
					if err != nil {
						break
					}
				}
				got <- rest
			})
			c := dial(t, addr, remote.Options{})
			if _, err := c.SendAhead(context.Background(), message("a@example.net"), message("b@example.net")); err != nil {
				t.Fatal(err)
			}
			if err := tc.then(c); err == nil {
				t.Errorf("no error; want the session closed")
			}
			if !c.Broken() && tc.name != "quit" {
				t.Errorf("Broken() = false")
			}
			if rest := strings.Join(<-got, ""); rest != "" {
				t.Errorf("server got %q as content after the 354; want the session closed with nothing", rest)
			}
		})
	}
}

// aheadOpening serves a session up to a first message's content and dot
// with the next one's commands behind it, left unanswered.
func aheadOpening(s *scriptConn) {
	s.send("220 script.test ESMTP")
	s.expect("EHLO [127.0.0.1]")
	s.send("250-script.test", "250 PIPELINING")
	s.read(3)
	s.send("250 ok", "250 ok", "354 go ahead")
	s.read(5 + 3)
}

// TestSendAheadUnreadable: when the replies to the next message's commands
// cannot be read (the server closes after the dot's reply), the message
// sent keeps its reply and the session is Broken.
func TestSendAheadUnreadable(t *testing.T) {
	addr := newScript(t, func(s *scriptConn) {
		aheadOpening(s)
		s.send("250 2.0.0 queued")
	})
	c := dial(t, addr, remote.Options{})
	res, err := c.SendAhead(context.Background(), message("a@example.net"), message("b@example.net"))
	if err != nil || !res.Accepted(0) {
		t.Fatalf("SendAhead = %+v, %v; want accepted", res, err)
	}
	if !c.Broken() || c.Waiting() {
		t.Errorf("Broken(), Waiting() = %v, %v; want true, false", c.Broken(), c.Waiting())
	}
}

// TestSendAheadOutOfStep: replies to a group begun ahead that are out of
// step never pass for a delivery. A reply more than the group asked for
// breaks the session, the message sent keeping its own reply; a 250 to
// the DATA begun ahead fails the next message, its content unsent.
func TestSendAheadOutOfStep(t *testing.T) {
	for _, tc := range []struct {
		name    string
		replies []string
	}{
		{"one reply too many", []string{"250 2.0.0 queued", "250 ok", "250 ok", "354 go ahead", "550 5.7.1 stray"}},
		{"250 to DATA", []string{"250 2.0.0 queued", "250 ok", "250 ok", "250 2.0.0 taken"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			addr := newScript(t, func(s *scriptConn) {
				aheadOpening(s)
				s.send(tc.replies...)
				b := make([]byte, 4096)
				if n, _ := s.nc.Read(b); n > 0 {
					t.Errorf("server got %q after the group; want nothing more", b[:n])
				}
			})
			c := dial(t, addr, remote.Options{})
			res, err := c.SendAhead(context.Background(), message("a@example.net"), message("b@example.net"))
			if err != nil || !res.Accepted(0) {
				t.Fatalf("SendAhead = %+v, %v; want the first message accepted", res, err)
			}
			if c.Broken() {
				c.Close()
				return
			}
			res, err = c.Send(context.Background(), message("b@example.net"))
			if err == nil || res.Accepted(0) {
				t.Errorf("second Send = %+v, %v; want an error, not delivered", res, err)
			}
			if !c.Broken() {
				t.Errorf("Broken() = false")
			}
			c.Close()
		})
	}
}

// TestGreetingTimeout: a greeting slower than the connect timeout is
// waited for when GreetingTimeout (--prompt-timeout) allows it; once
// GreetingTimeout has passed without one, EHLO goes ahead without it, as
// E-MailRelay's --prompt-timeout does, and the late greeting is skipped.
func TestGreetingTimeout(t *testing.T) {
	f := harness.NewFakeSMTP(t, harness.Script{Greeting: harness.Response{Delay: 600 * time.Millisecond}})
	c := dial(t, f.Addr(), remote.Options{ConnectTimeout: 200 * time.Millisecond, GreetingTimeout: 5 * time.Second})
	if c.Greet.Code != 220 {
		t.Errorf("greeting %q; want 220", c.Greet)
	}
	c = dial(t, f.Addr(), remote.Options{ConnectTimeout: 5 * time.Second, GreetingTimeout: 200 * time.Millisecond})
	if c.Greet.Code != 220 {
		t.Errorf("late greeting %q; want 220", c.Greet)
	}
	if res, err := c.Send(context.Background(), message("b@example.net")); err != nil || !res.Accepted(0) {
		t.Errorf("Send after a late greeting = %+v, %v; want delivered", res, err)
	}
}

// TestS28BodyNotCopiedThroughABuffer: a body made of parts (the
// scheduler's added header before the spooled text is an io.MultiReader)
// goes through the dot writer (copyText), not through io.MultiReader's
// WriteTo, which allocated 32 KiB for every message sent: half of all
// that a store-and-forward relay allocated.
func TestS28BodyNotCopiedThroughABuffer(t *testing.T) {
	sink := harness.StartSink(t, harness.SinkOptions{})
	c := dial(t, sink.Addr(), remote.Options{Helo: "client.test"})
	text := "Subject: test\r\n\r\n" + strings.Repeat(strings.Repeat("x", 78)+"\r\n", 50)
	send := func() {
		m := &remote.Message{From: "sender@example.org", To: []string{"a@example.net"},
			Body: io.MultiReader(strings.NewReader("Received: by test\r\n"), strings.NewReader(text)), Size: int64(19 + len(text))}
		if _, err := c.Send(context.Background(), m); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	send() // the connection's buffers
	var before, after runtime.MemStats
	const n = 50
	runtime.ReadMemStats(&before)
	for range n {
		send()
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 16<<10 {
		t.Errorf("sending a 4 KiB message allocated %d octets; want well under the 32 KiB of a copy buffer", per)
	}
}
