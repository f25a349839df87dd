package deliver

import (
	"bufio"
	"bytes"
	"io"

	"github.com/relaykeeper/relaykeeper/internal/reply"
)

// Toward an upstream without SMTPUTF8 (RFC 6531), a message that came in
// with SMTPUTF8 is sent without it when nothing in it needs it: ASCII
// addresses and a header section of ASCII only (RFC 6532's UTF-8 headers
// are what would need it). A UTF-8 address fails alone, with 5.6.7, unsent
// (remote does that); UTF-8 in the header section fails the whole message
// with 5.6.7, since relaykeeper does not rewrite headers (RFC 6857's
// downgrade). An 8-bit body is 8BITMIME's business, not SMTPUTF8's.

// utf8HeadersReply is the reply for a message whose headers need SMTPUTF8.
var utf8HeadersReply = reply.Reply{Code: 554, Enhanced: "5.6.7",
	Lines: []string{"5.6.7 the upstream does not offer SMTPUTF8, which this message's UTF-8 header fields need (RFC 6532)"},
	Local: true}

// headersNeedUTF8 reports whether the header section of the message r
// reads holds 8-bit bytes.
func headersNeedUTF8(msg io.Reader) (bool, error) {
	r := bufio.NewReaderSize(msg, 64<<10)
	for {
		line, err := r.ReadSlice('\n')
		if len(bytes.TrimRight(line, "\r\n")) == 0 && (len(line) > 0 || err == io.EOF) {
			return false, nil // the blank line, or the end: headers done
		}
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
