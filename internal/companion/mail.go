package companion

import (
	"bytes"
	"fmt"
	"net"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
)

// mailReport mails the administrator (-m) what was done.
func (c *Companion) mailReport(a *action) {
	subject := fmt.Sprintf("relaykeeper postfix-enforcer: %s, queue %s to %s", a.action, a.r.QueueID, a.r.To)
	var body strings.Builder
	fmt.Fprintf(&body, "%s on %s did: %s\n", "relaykeeper postfix-enforcer", c.opts.Host, a.action)
	if a.why != "" {
		fmt.Fprintf(&body, "(instead of %s: %s)\n", a.pl.Verdict.Action, a.why)
	}
	if a.failed != "" {
		fmt.Fprintf(&body, "It failed: %s\n", a.failed)
	}
	fmt.Fprintf(&body, "\nRule:       %s\nQueue id:   %s\n", ruleName(a.pl.Verdict), a.r.QueueID)
	if a.r.OrigQueueID != "" {
		fmt.Fprintf(&body, "Original:   %s (before the content filter)\n", a.r.OrigQueueID)
	}
	fmt.Fprintf(&body, "Client:     %s [%s]\nFrom:       <%s>\nTo:         <%s>\nMessage-ID: <%s>\nRelay:      %s\nStatus:     %s\n",
		a.r.ClientName, a.r.ClientIP, a.r.From, a.r.To, a.r.MessageID, a.r.Relay, a.r.Status)
	if a.pl.Domain != "" {
		fmt.Fprintf(&body, "Domain:     %s (%s)\n", a.pl.Domain, c.opts.SenderAccess)
	}
	fmt.Fprintf(&body, "\nThe upstream's reply:\n\n  %s\n", a.r.Reply)
	msg := fmt.Sprintf("From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: <%d.%d.pfe@%s>\r\nAuto-Submitted: auto-generated\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s",
		c.opts.Sender, c.opts.MailTo, subject, c.now().Format(time.RFC1123Z), c.now().UnixNano(), os.Getpid(), c.opts.Host,
		strings.ReplaceAll(body.String(), "\n", "\r\n"))
	if c.opts.Test {
		return
	}
	if err := c.send([]string{c.opts.MailTo}, []byte(msg)); err != nil {
		c.log.Error("mailing the report", "to", c.opts.MailTo, "err", err)
	}
}

// send submits a message over SMTP to --smtp, from --sender.
func (c *Companion) send(to []string, msg []byte) error {
	from := c.opts.Sender
	if a, err := mail.ParseAddress(from); err == nil {
		from = a.Address
	}
	conn, err := net.DialTimeout("tcp", c.opts.SMTP, 30*time.Second)
	if err != nil {
		return fmt.Errorf("companion: sending to %s: %w", c.opts.SMTP, err)
	}
	conn.SetDeadline(time.Now().Add(5 * time.Minute))
	cl := smtp.NewClient(conn)
	defer cl.Close()
	if err := cl.Hello(c.opts.Host); err != nil {
		return fmt.Errorf("companion: sending to %s: %w", c.opts.SMTP, err)
	}
	opts := &smtp.MailOptions{}
	if bytes.ContainsFunc(msg, func(r rune) bool { return r >= 0x80 }) {
		if ok, _ := cl.Extension("8BITMIME"); ok {
			opts.Body = smtp.Body8BitMIME
		}
	}
	if err := cl.Mail(from, opts); err != nil {
		return fmt.Errorf("companion: sending to %s: %w", c.opts.SMTP, err)
	}
	for _, rcpt := range to {
		if err := cl.Rcpt(rcpt, nil); err != nil {
			return fmt.Errorf("companion: sending to %s: %w", c.opts.SMTP, err)
		}
	}
	w, err := cl.Data()
	if err != nil {
		return fmt.Errorf("companion: sending to %s: %w", c.opts.SMTP, err)
	}
	if _, err := w.Write(msg); err != nil {
		return fmt.Errorf("companion: sending to %s: %w", c.opts.SMTP, err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("companion: sending to %s: %w", c.opts.SMTP, err)
	}
	cl.Quit()
	return nil
}
