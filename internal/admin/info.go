package admin

import "runtime"

// infoKeys are the items "info KEY" shows. E-MailRelay's command shows
// fixed items about the program, its version among them; relaykeeper has
// the version, and keeps licence texts in its source tree, not on the
// admin port.
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
