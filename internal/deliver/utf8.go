package deliver

import (
	"github.com/relaykeeper/relaykeeper/internal/eightbit"
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
