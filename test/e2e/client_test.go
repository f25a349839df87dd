package e2e

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// smtpClient is a raw SMTP client that keeps every reply line exactly as
// the server sent it, for checking codes, enhanced codes and texts.
type smtpClient struct {
	conn net.Conn
	r    *bufio.Reader
}

// reply is one SMTP reply: its lines without CRLF, as sent.
type reply []string

// code is the reply's three-digit code, or 0 for an empty reply.
func (r reply) code() int {
	if len(r) == 0 || len(r[0]) < 3 {
		return 0
	}
	var c int
	fmt.Sscanf(r[0][:3], "%d", &c)
	return c
}

func (r reply) String() string { return strings.Join(r, "\\r\\n") }

// dialSMTP connects (from any local address) and reads the greeting.
func dialSMTP(addr string) (*smtpClient, reply, error) { return dialFrom(addr, "") }

func (c *smtpClient) Close() error { return c.conn.Close() }

// read reads one reply, bounded by 30 seconds.
func (c *smtpClient) read() (reply, error) {
	c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	var rep reply
	for {
		line, err := c.r.ReadString('\n')
		if err != nil {
			return rep, fmt.Errorf("read reply: %w", err)
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		rep = append(rep, line)
		if len(line) < 4 || line[3] != '-' {
			return rep, nil
		}
	}
}

// cmd sends one command line and reads its reply.
func (c *smtpClient) cmd(format string, args ...any) (reply, error) {
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c.conn, format+"\r\n", args...); err != nil {
		return nil, err
	}
	return c.read()
}

// transaction is what happened to one message sent by send.
type transaction struct {
	Greeting, Ehlo, Mail reply
	Rcpt                 []reply
	Data, Final          reply
}

// errRefused means that the server answered a stage with a non-success
// reply; the transaction records which.
var errRefused = errors.New("refused")

// send runs EHLO, MAIL, RCPT for each recipient, DATA and the message on
// an open connection. It stops at the first refused stage (any RCPT refused
// stops only when none was accepted) and returns errRefused then. body
// uses "\n" or "\r\n" line endings; it is sent with CRLF and dot-stuffed.
func (c *smtpClient) send(from string, to []string, body string) (transaction, error) {
	var tx transaction
	var err error
	if tx.Mail, err = c.cmd("MAIL FROM:<%s>", from); err != nil {
		return tx, err
	}
	if tx.Mail.code() != 250 {
		return tx, errRefused
	}
	accepted, err := c.rcptAll(&tx, to)
	if err != nil {
		return tx, err
	}
	if accepted == 0 {
		c.cmd("RSET")
		return tx, errRefused
	}
	if tx.Data, err = c.cmd("DATA"); err != nil {
		return tx, err
	}
	if tx.Data.code() != 354 {
		return tx, errRefused
	}
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSuffix(strings.ReplaceAll(body, "\r\n", "\n"), "\n"), "\n") {
		if strings.HasPrefix(line, ".") {
			b.WriteByte('.')
		}
		b.WriteString(line)
		b.WriteString("\r\n")
	}
	b.WriteString(".\r\n")
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write([]byte(b.String())); err != nil {
		return tx, err
	}
	if tx.Final, err = c.read(); err != nil {
		return tx, err
	}
	if tx.Final.code() != 250 {
		return tx, errRefused
	}
	return tx, nil
}

// sendMail sends one message over a connection of its own: greeting, EHLO,
// the transaction, QUIT.
func sendMail(addr, from string, to []string, body string) (transaction, error) {
	c, greet, err := dialSMTP(addr)
	tx := transaction{Greeting: greet}
	if err != nil {
		return tx, err
	}
	defer c.Close()
	if greet.code() != 220 {
		return tx, errRefused
	}
	if tx.Ehlo, err = c.cmd("EHLO client.e2e.test"); err != nil {
		return tx, err
	}
	t2, err := c.send(from, to, body)
	t2.Greeting, t2.Ehlo = tx.Greeting, tx.Ehlo
	if err == nil {
		c.cmd("QUIT")
	}
	return t2, err
}

// mustSend sends one message and fails the test unless it is accepted.
func mustSend(t *testing.T, addr, from string, to []string, body string) transaction {
	t.Helper()
	tx, err := sendMail(addr, from, to, body)
	if err != nil {
		t.Fatalf("send to %s: %v; transaction %+v", addr, err, tx)
	}
	return tx
}

// message makes a small message with a Subject.
func message(subject string) string {
	return "From: <sender@example.org>\nTo: <rcpt@example.net>\nSubject: " + subject +
		"\nMessage-ID: <" + strings.ReplaceAll(subject, " ", "-") + "@e2e.test>\n\nBody of " + subject + ".\n"
}

// queuedID returns the id in the relay's "250 2.0.0 OK: queued as ID".
func queuedID(t *testing.T, r reply) string {
	t.Helper()
	const p = "250 2.0.0 OK: queued as "
	if len(r) != 1 || !strings.HasPrefix(r[0], p) {
		t.Fatalf("final reply = %q; want one line %q", r, p+"ID")
	}
	return strings.TrimPrefix(r[0], p)
}

func newReader(conn net.Conn) *bufio.Reader { return bufio.NewReader(conn) }

// rcptAll sends RCPT for each address, noting each reply in tx, and
// returns how many were accepted.
func (c *smtpClient) rcptAll(tx *transaction, to []string) (int, error) {
	accepted := 0
	for _, a := range to {
		rep, err := c.cmd("RCPT TO:<%s>", a)
		tx.Rcpt = append(tx.Rcpt, rep)
		if err != nil {
			return accepted, err
		}
		if rep.code()/100 == 2 {
			accepted++
		}
	}
	return accepted, nil
}
