package pop3

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// writeMessage sends a message as a multi-line response body (RFC 1939
// section 3): every line ends in CRLF (a bare LF becomes CRLF), a line that
// starts with '.' gets another '.', and the closing ".\r\n" follows. With
// bodyLines >= 0 only the header, the blank line and that many body lines
// are sent (TOP); with bodyLines < 0, everything (RETR).
//
// Lines of any length pass through: a line longer than the reader's buffer
// is sent in pieces, and only its first piece is checked for a leading dot.
func writeMessage(w *bufio.Writer, r io.Reader, bodyLines int) error {
	br := bufio.NewReaderSize(r, 32<<10)
	atStart := true  // the next byte starts a line
	inHeader := true // no blank line seen yet
	pendingCR := false
	body := 0
	for {
		if !inHeader && bodyLines >= 0 && body >= bodyLines && atStart {
			break
		}
		chunk, err := br.ReadSlice('\n')
		if len(chunk) > 0 {
			whole := err == nil // chunk ends with '\n'
			if atStart {
				if inHeader && (string(chunk) == "\r\n" || string(chunk) == "\n") {
					inHeader = false
				} else if !inHeader {
					body++
				}
				if chunk[0] == '.' {
					w.WriteByte('.')
				}
			}
			if whole {
				line := chunk[:len(chunk)-1]
				if len(line) == 0 && pendingCR {
					// A CR ended the previous piece and went out
					// with it; only the LF is missing.
					w.WriteByte('\n')
				} else {
					w.Write(bytes.TrimSuffix(line, []byte{'\r'}))
					w.WriteString("\r\n")
				}
				pendingCR = false
				atStart = true
			} else {
				w.Write(chunk)
				pendingCR = chunk[len(chunk)-1] == '\r'
				atStart = false
			}
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	if !atStart {
		if pendingCR {
			w.WriteByte('\n')
		} else {
			w.WriteString("\r\n")
		}
	}
	_, err := w.WriteString(".\r\n")
	return err
}
