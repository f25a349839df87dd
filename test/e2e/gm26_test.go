package e2e

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// gm26SendBDAT is sendFrom with the message sent in two BDAT chunks
// (RFC 3030), the second one LAST, instead of DATA: the reply to BDAT
// LAST is the transaction's Final.
func gm26SendBDAT(addr, ip, from string, to []string, body string) (transaction, error) {
	c, greet, err := dialFrom(addr, ip)
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
	if tx.Mail, err = c.cmd("MAIL FROM:<%s>", from); err != nil || tx.Mail.code() != 250 {
		return tx, err
	}
	accepted := 0
	for _, a := range to {
		rep, err := c.cmd("RCPT TO:<%s>", a)
		tx.Rcpt = append(tx.Rcpt, rep)
		if err != nil {
			return tx, err
		}
		if rep.code()/100 == 2 {
			accepted++
		}
	}
	if accepted == 0 {
		c.cmd("QUIT")
		return tx, nil
	}
	msg := strings.ReplaceAll(strings.ReplaceAll(body, "\r\n", "\n"), "\n", "\r\n")
	half := strings.Index(msg, "\r\n\r\n") + 4
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.conn.Write([]byte("BDAT " + strconv.Itoa(half) + "\r\n" + msg[:half])); err != nil {
		return tx, err
	}
	if tx.Data, err = c.read(); err != nil || tx.Data.code() != 250 {
		return tx, err
	}
	rest := msg[half:]
	if _, err := c.conn.Write([]byte("BDAT " + strconv.Itoa(len(rest)) + " LAST\r\n" + rest)); err != nil {
		return tx, err
	}
	tx.Final, err = c.read()
	c.cmd("QUIT")
	return tx, err
}

// TestGM26EveryReplyAfterBDAT: every reply of gmail-replies.md given by
// the fake Gmail where Gmail gives it, to clients that send their message
// in BDAT chunks (CHUNKING, RFC 3030) rather than with DATA, through a
// relay that stores and forwards and through a proxy, welcomelisted or
// not: each gets its verdict's action (TestRevPFE3RelayEveryReply's
// checks), the proxy's refusal at the final chunk read as one after the
// content.
func TestGM26EveryReplyAfterBDAT(t *testing.T) {
	t.Parallel()
	relayEveryReplyBy(t, pfe3Replies(t), gm26SendBDAT)
}
