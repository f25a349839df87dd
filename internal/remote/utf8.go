package remote

import "github.com/relaykeeper/relaykeeper/internal/reply"

// UTF8AddressRefusal is the reply, said by the relay itself, for an
// address that needs SMTPUTF8 (RFC 6531) toward a server that does not
// offer it: 5.6.7, as RFC 6531 section 3.6.1 asks, naming the address as
// the cause. code is 550 for the sender (at MAIL) and 553 for a recipient.
func UTF8AddressRefusal(code int, addr string) reply.Reply {
	return reply.Reply{Code: code, Enhanced: "5.6.7",
		Lines: []string{"5.6.7 <" + addr + ">: the upstream does not offer SMTPUTF8, which this address needs"},
		Local: true}
}
