package smtpd

import (
	"bytes"
	"io"
	"time"
)

// The message text of DATA, read in blocks.
//
// go-smtp's data reader takes the text one octet at a time (ReadByte on a
// bufio.Reader over the command layer), which cost about half of the
// relay's CPU on 100 KB messages. The command layer already follows the
// text with the same state machine to find the final dot (readData), so
// it hands the session the text directly instead: Text returns a reader
// that takes the text from the command layer's buffer in blocks, removes
// the leading dot of a line as go-smtp does (unstuff), and ends at the
// final dot. go-smtp itself then sees only the end marker, ".\r\n", which
// its data reader reads as an empty message that has ended: its reply and
// its state machine stay as they are, and the reply still comes after the
// final dot and only then.
//
// If the session stops reading before the end (a size limit, a refusal, a
// storage failure), go-smtp drains its data reader as always, and the
// command layer reads the rest of the text through the same reader and
// throws it away before it hands go-smtp the end marker (Read, modeData).
// A read error ends the session (textFailed) and is never an end of text.

// Text returns the message text of the DATA command go-smtp has just
// answered with 354, for the session's Data to read in place of go-smtp's
// data reader, or nil when go-smtp is not at that point (BDAT, a command
// layer that has already passed on some of the text). It is called on
// go-smtp's connection goroutine, from Data; the reader is read there, or
// by one goroutine that Data waits for.
func (c *commandConn) Text() io.Reader {
	if c.br == nil || c.verb != "DATA" || c.code != 354 || c.answered || c.mode != modeCommand || len(c.pending) > 0 {
		return nil
	}
	c.applyReply() // modeData, from the start of a line
	c.text, c.textErr = true, nil
	return dataText{c}
}

// dataText is the reader Text returns.
type dataText struct{ c *commandConn }

func (t dataText) Read(p []byte) (int, error) { return t.c.readText(p) }

// readText reads message text into p, dot-unstuffed, and returns io.EOF
// with the last of it once the final dot's line has been read; the
// command layer then hands go-smtp the end marker.
func (c *commandConn) readText(p []byte) (int, error) {
	if c.textErr != nil {
		return 0, c.textErr
	}
	if !c.text {
		return 0, io.EOF
	}
	for {
		if c.br.Buffered() == 0 {
			if d := c.srv.opts.IdleTimeout; d > 0 {
				// Each read of a long message gets the idle timeout,
				// not the whole message.
				c.Conn.SetReadDeadline(time.Now().Add(d))
			}
			if _, err := c.br.Peek(1); err != nil {
				if err == io.EOF {
					// The client went away before the final dot;
					// as go-smtp's data reader says.
					err = io.ErrUnexpectedEOF
				}
				c.textErr = c.textFailed(err)
				return 0, c.textErr
			}
		}
		buf, _ := c.br.Peek(c.br.Buffered())
		n, used, s := unstuff(p, buf, c.dstate)
		c.br.Discard(used)
		c.dstate = s
		if s == dEnd {
			c.text, c.mode = false, modeCommand
			c.pending = []byte(".\r\n")
			return n, io.EOF
		}
		if n > 0 || len(p) == 0 {
			return n, nil
		}
		// Only a dot or a CR that unstuffing removed: read on.
	}
}

// drainText reads and throws away the rest of a text the session left
// unread, with p as scratch space, so that go-smtp sees the end marker
// next. It returns the read error that ended the session, if any.
func (c *commandConn) drainText(p []byte) error {
	if len(p) == 0 {
		p = make([]byte, 4096)
	}
	for c.text {
		if _, err := c.readText(p); err != nil && err != io.EOF {
			return err
		}
	}
	return nil
}

// unstuff copies message text from src to dst, starting in the scanner
// state s: a dot at the start of a line is removed (RFC 5321 section
// 4.5.2); only CRLF ends a line, and CRLF "." CRLF ends the text, its last
// three octets not copied. The CR after a leading dot is held back until
// the next octet shows whether it ends the text; when it does not, it is
// copied after all (go-smtp's data reader drops it). It stops when dst is
// full (it reads at most len(dst) octets of src, and writes no more than
// it reads, a CR held back from an earlier call aside), when src is used
// up, or at the end of the text (state dEnd), and returns the octets
// written and read and the new state. Within a line, only a CR can change
// the state, so the text between CRs is found with IndexByte and copied
// in one piece.
func unstuff(dst, src []byte, s int) (n, used, state int) {
	if s == dDotCR && len(src) > 0 && src[0] != '\n' {
		// The CR held back at the end of the last call was text.
		if len(dst) == 0 {
			return 0, 0, s
		}
		dst[0] = '\r'
		n, used, state = unstuff(dst[1:], src, dData)
		return n + 1, used, state
	}
	src = src[:min(len(src), len(dst))]
	run := 0 // src[run:i] is to be copied
	i := 0
	for i < len(src) {
		if s == dData {
			j := bytes.IndexByte(src[i:], '\r')
			if j < 0 {
				i = len(src)
				break
			}
			i += j
		}
		b := src[i]
		if s == dDotCR && b != '\n' {
			run-- // the CR held back at src[i-1] was text
		}
		drop := s == dBeginLine && b == '.' || s == dDot && b == '\r' || s == dDotCR && b == '\n'
		s = nextDataState(s, b)
		if drop {
			n += copy(dst[n:], src[run:i])
			run = i + 1
		}
		i++
		if s == dEnd {
			break
		}
	}
	n += copy(dst[n:], src[run:i])
	return n, i, s
}
