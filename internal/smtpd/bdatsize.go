package smtpd

import (
	"io"

	"github.com/emersion/go-smtp"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// A BDAT chunk that takes the message past the size limit (--size) is
// refused with 552 5.3.4 in reply to that chunk, as RFC 3030 section 2
// has it ("a 552 reply code ... in response to the BDAT command"), and
// the transaction ends with it, as go-smtp ends one for its own limit:
// a later BDAT hears 503 (need MAIL and RCPT), the client sends RSET or
// MAIL again. The session's size count (sizeLimit) cannot give that
// reply: go-smtp passes a chunk to the message reader through a pipe and
// says 250 once the reader has taken its octets, before the reader has
// counted them, so the 552 came in reply to the next chunk, and a
// pipelined client's replies went out of step. The chunk sizes are known
// at the command, so the command layer counts them.

// bdatOverLimit counts a BDAT's chunk into its transaction's size and,
// when it takes the message past the size limit, reads the chunk and
// drops it, and returns the line go-smtp gets in the command's place: an
// RSET, which ends go-smtp's transaction (and the session's draft) and
// whose reply the client hears as the 552 (sizeWording). Otherwise it
// returns nil.
func (c *commandConn) bdatOverLimit(verb, arg string) []byte {
	max := c.srv.opts.MaxMessageSize
	if verb != "BDAT" || max <= 0 {
		return nil
	}
	size, _, _ := bdatArgs(arg)
	if !c.bdat {
		c.bdatOctets = 0 // the transaction's first chunk
	}
	if c.bdatOctets += size; c.bdatOctets <= max {
		return nil
	}
	// The chunk follows its command whatever the reply.
	io.CopyN(io.Discard, c.br, size)
	if c.sess != nil {
		c.srv.opts.MailLog.Reject(c.RemoteAddr().String(), "data", smtpErrorText(smtp.ErrDataTooLarge),
			"from", maillog.Addr(c.sess.from))
	}
	c.errors++
	c.sizeRefused = true
	c.verb, c.arg, c.code, c.answered, c.ehloTLSAdv, c.heard, c.barePostmaster = "RSET", "", 0, false, false, false, false
	return []byte("RSET\r\n")
}

// sizeWording says go-smtp's reply to the RSET that bdatOverLimit gave
// it as the 552 the client's BDAT gets.
func (c *commandConn) sizeWording(p []byte) []byte {
	if !c.sizeRefused || c.verb != "RSET" || len(p) < 4 || p[3] != ' ' {
		return p
	}
	c.sizeRefused = false
	c.code = 552
	return []byte(smtpErrorText(smtp.ErrDataTooLarge) + "\r\n")
}
