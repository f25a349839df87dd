package admin

import "runtime"

// infoKeys are the items E-MailRelay's "info KEY" command shows that
// relaykeeper has: E-MailRelay 2.6 answers "version", "copyright",
// "credit" and "warranty"; relaykeeper has a version, and states its
// licence in its source tree rather than on the admin port.
var infoKeys = map[string]struct{}{"version": {}}

// infoUsage answers "info" without a key or with an unknown one, as
// E-MailRelay lists its keys.
const infoUsage = "usage: info {version}"

// info is the reply to "info KEY", for a key in infoKeys.
func (s *Server) info(key string) string {
	switch key {
	case "version":
		v := s.opts.Version
		if v == "" {
			v = "unknown"
		}
		return "relaykeeper " + v + " (" + runtime.Version() + ")"
	}
	return infoUsage
}
