package config

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
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

// CheckListenNames looks up each name among the SMTP listen addresses
// that is neither an IP address nor a network interface of this host
// ("localhost"), as listening on it would: --check, which listens on
// nothing, refuses a name that is none of the three, as the start does,
// and the start names the setting's line instead of failing at the
// listen. Errors name the setting (Setting).
func (c *Config) CheckListenNames() error {
	if c.SMTP.Disabled || c.Mode == ModeClient {
		return nil
	}
	for _, l := range c.SMTPListens() {
		host, _, err := net.SplitHostPort(l.Addr)
		if err != nil || host == "" || net.ParseIP(strings.SplitN(host, "%", 2)[0]) != nil {
			continue // Validate has judged its form
		}
		name := strings.TrimSuffix(strings.TrimSuffix(host, "-ipv4"), "-ipv6")
		if _, err := net.InterfaceByName(name); err == nil {
			return Setting("smtp.interfaces", fmt.Errorf("network interface %s has no address to listen on (%s)", name, host))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = net.DefaultResolver.LookupHost(ctx, host)
		cancel()
		if err != nil {
			return Setting("smtp.interfaces", fmt.Errorf("%q is not an IP address, a network interface of this host or a host name: %w", host, err))
		}
	}
	return nil
}
