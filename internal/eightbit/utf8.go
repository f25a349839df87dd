package eightbit

import (
	"bufio"
	"bytes"
	"io"
)

// UTF8HeadersText is the text of the 554 5.6.7 that refuses a message
// sent with SMTPUTF8 whose header fields hold UTF-8 (RFC 6532), toward an
// upstream that does not offer SMTPUTF8: relaykeeper does not rewrite
// header fields (RFC 6857's downgrade). Store and forward bounces with it,
// proxy mode answers the final dot with it.
const UTF8HeadersText = "the upstream does not offer SMTPUTF8, which this message's UTF-8 header fields need (RFC 6532)"

// HeadersNeedUTF8 reports whether the header section of the message msg
// reads holds 8-bit bytes.
func HeadersNeedUTF8(msg io.Reader) (bool, error) {
	r := bufio.NewReaderSize(msg, 64<<10)
	mid := false // the last piece was a line longer than the buffer, cut short
	for {
		line, err := r.ReadSlice('\n')
		if !mid && len(bytes.TrimRight(line, "\r\n")) == 0 && (len(line) > 0 || err == io.EOF) {
			return false, nil // the blank line, or the end: headers done
		}
		mid = err == bufio.ErrBufferFull
		for _, b := range line {
			if b >= 0x80 {
				return true, nil
			}
		}
		switch err {
		case nil, bufio.ErrBufferFull:
		case io.EOF:
			return false, nil
		default:
			return false, err
		}
	}
}
