package config

import (
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/milter"
)

// checkNamedPeers checks the peers that settings name for later use: every
// milter address (milter.server, each one, in every mode) and every
// enforce.trusted_upstreams entry, which Trusted compares with the
// upstream's name and address as they are, so that a host no reply can
// ever come from is refused now rather than ignored for ever.
func (v *validator) checkNamedPeers(c *Config) {
	for _, addr := range c.Milter.Server {
		if err := milter.CheckAddr(addr); err != nil {
			v.bad("%q: %v", addr, err)("milter.server")
		}
	}
	for _, u := range c.Enforce.TrustedUpstreams {
		if why := upstreamProblem(u); why != "" {
			v.bad("%q: %s", clipValue(u), why)("enforce.trusted_upstreams")
		}
	}
}

// upstreamProblem says what is wrong with a trusted upstream ("" if
// nothing): a host name, an address, either with a port, "[ADDR]" or
// "NAME[ADDR]" (as the mail log writes an upstream).
func upstreamProblem(u string) string {
	s := strings.TrimSpace(u)
	switch {
	case s == "":
		return "empty: name a host or an address"
	case strings.ContainsAny(s, "*?"):
		return "no wildcards: name each host exactly (Google's mail servers are trusted already)"
	case strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return "spaces or control characters: name one host or address per entry"
	}
	if name, rest, ok := strings.Cut(s, "["); ok {
		ip, port, ok := strings.Cut(rest, "]")
		if _, err := netip.ParseAddr(ip); !ok || err != nil {
			return "not an address in brackets"
		}
		if port != "" && !validPort(strings.TrimPrefix(port, ":")) || port != "" && port[0] != ':' {
			return "want NAME[ADDR] or [ADDR], with :PORT at most after it"
		}
		if name == "" || validHostName(name) {
			return ""
		}
		return "not a host name before the bracket"
	}
	if _, err := netip.ParseAddr(s); err == nil {
		return ""
	}
	host := s
	if h, port, err := net.SplitHostPort(s); err == nil {
		if !validPort(port) {
			return "port " + strconv.Quote(port) + " is not from 1 to 65535"
		}
		host = h
	}
	if _, err := netip.ParseAddr(host); err == nil || validHostName(host) {
		return ""
	}
	return "not a host name or address"
}

func validPort(p string) bool {
	n, err := strconv.Atoi(p)
	return err == nil && n >= 1 && n <= 65535
}

// validHostName reports whether s is a DNS host name: labels of letters,
// digits, hyphens and underscores, none empty but for a final dot.
func validHostName(s string) bool {
	s = strings.TrimSuffix(s, ".")
	if s == "" || len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(s, ".") {
		if l == "" || len(l) > 63 || strings.Trim(strings.ToLower(l), "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return false
		}
	}
	return true
}

// IdleSettings are warnings, one per setting given (in the file or by a
// switch) that does nothing in the mode chosen, each saying where it was
// set: the enforcer's settings when the relay does not enforce (store-only,
// a client run, enforcement off), the server side's filters, milters and
// accounts in a client run. --check and the start-up log show them.
func (c *Config) IdleSettings() []string {
	var out []string
	def := Default()
	idle := func(why string, keys ...string) {
		sort.Strings(keys)
		for _, k := range keys {
			// A file's key with its default value changes nothing in
			// any mode: the shipped example file lists every key so.
			_, bySwitch := c.Origin.Switches[k]
			if c.Origin.Given(k) && (bySwitch || !sameAsDefault(c, &def, k)) {
				out = append(out, c.Origin.problem(k, "does nothing: "+why).Error())
			}
		}
	}
	if !c.Enforcing() && !c.Enforce.Disabled {
		var keys []string
		for k := range c.Origin.Lines {
			keys = append(keys, k)
		}
		for k := range c.Origin.Switches {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		keys = slices.DeleteFunc(slices.Compact(keys), func(k string) bool {
			return !strings.HasPrefix(k, "enforce.") || k == "enforce.disabled"
		})
		idle(fmt.Sprintf("the relay enforces nothing in this mode (%s: it forwards nothing to an upstream)", c.modeName()), keys...)
	}
	if c.Mode == ModeClient {
		idle("a client run (--as-client) only delivers the spool; it takes no mail", "milter.server", "filter.server", "auth.server_secrets")
	}
	return out
}

// sameAsDefault reports whether the setting key ("enforce.ban_time") has
// the same value in c as in def.
func sameAsDefault(c, def *Config, key string) bool {
	v, d := reflect.ValueOf(c).Elem(), reflect.ValueOf(def).Elem()
	for name := range strings.SplitSeq(key, ".") {
		if v.Kind() != reflect.Struct {
			return false
		}
		f, ok := fieldByKey(v.Type(), name)
		if !ok {
			return false
		}
		v, d = v.FieldByIndex(f.Index), d.FieldByIndex(f.Index)
	}
	return reflect.DeepEqual(v.Interface(), d.Interface())
}

// modeName names the mode for IdleSettings.
func (c *Config) modeName() string {
	if c.Mode == ModeClient {
		return "--as-client"
	}
	return "store only"
}
