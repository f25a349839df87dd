package config

import (
	"net"
	"slices"
	"strconv"
	"strings"
)

// Listen is one SMTP listening address with its role (RoleSMTP, ...).
type Listen struct {
	Role, Addr string
}

// SMTPListens turns --interface and --port into the SMTP listen
// addresses, each with its role; an entry without a port gets --port. An
// address given twice for a role ("127.0.0.1,smtp=lo") is listed once.
func (c *Config) SMTPListens() []Listen {
	port := strconv.Itoa(c.SMTP.Port)
	if len(c.SMTP.Interfaces) == 0 {
		return []Listen{{RoleSMTP, ":" + port}}
	}
	var out []Listen
	for _, entry := range c.SMTP.Interfaces {
		role, a := SplitRole(entry)
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(strings.Trim(a, "[]"), port)
		}
		for _, a := range interfaceAddrs(a) {
			if l := (Listen{role, a}); !slices.Contains(out, l) {
				out = append(out, l)
			}
		}
	}
	return out
}
