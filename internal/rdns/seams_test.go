package rdns_test

import (
	"github.com/relaykeeper/relaykeeper/internal/rdns"
	"github.com/relaykeeper/relaykeeper/internal/smtpd"
)

// The Resolver is what the relay's SMTP server asks for client names.
var _ smtpd.ClientNamer = (*rdns.Resolver)(nil)
