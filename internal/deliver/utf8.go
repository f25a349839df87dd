package deliver

import (
	"unicode/utf8"

	"github.com/relaykeeper/relaykeeper/internal/eightbit"
	"github.com/relaykeeper/relaykeeper/internal/remote"
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
	Lines: []string{"5.6.7 " + eightbit.UTF8HeadersText},
	Local: true}

// utf8Result is what recipient rcpt of a message whose header section
// needs SMTPUTF8 comes to toward an upstream without it (err: the
// content could not be read, a deferral). The cause the sender reads in
// the DSN is the address, when the address needs SMTPUTF8 itself (the
// relay's own Received field names a single recipient, so a UTF-8
// recipient always makes the header section need it too, and the DSN
// blamed "UTF-8 header fields" the sender never wrote): the sender's, as
// remote refuses it at MAIL, then the recipient's, as at RCPT, the same
// reply and DSN as when the header section is ASCII; only then the header
// fields. Postfix fails such a message alike ("5.6.7
// SMTPUTF8 is required, but was not offered by host").
func utf8Result(rcpt, from, relay string, err error) rcptResult {
	switch {
	case err != nil:
		return rcptResult{err: err, relay: relay}
	case !asciiOnly(from):
		return rcptResult{reply: remote.UTF8AddressRefusal(550, from), stage: "mail", command: "MAIL FROM", relay: relay}
	case !asciiOnly(rcpt):
		return rcptResult{reply: remote.UTF8AddressRefusal(553, rcpt), stage: "rcpt", command: "RCPT TO", relay: relay}
	}
	return rcptResult{reply: utf8HeadersReply, stage: "data", relay: relay}
}

func asciiOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
