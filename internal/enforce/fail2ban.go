package enforce

import (
	"net/netip"
	"strings"
)

// SyslogTag is the syslog tag (program name) under which relay-enforcer
// logs its ban lines, and which its fail2ban filter expects
// (_daemon = relay-enforcer). relaykeeper sends BanLine's text under this
// tag so that jails written for relay-enforcer keep working.
const SyslogTag = "relay-enforcer"

// BanLine is the message of the syslog line that relay-enforcer writes to
// have fail2ban ban a client:
//
//	bannable REASON IP
//
// Its jail's filter is "^%(__prefix_line)sbannable.* <HOST>$": the line
// starts with "bannable" and ends with a space and the IP. REASON is put
// on one line and may be empty. Logged as
//
//	Nov 22 10:00:10 relay relay-enforcer[812]: bannable very low reputation (550 5.7.1 ...) 203.0.113.9
//
// The line should be written when the ban takes effect (BanEntry.From), so
// that fail2ban, like relay-enforcer's 10 s delay, lets the reply to the
// client's own session go out first.
func BanLine(reason string, ip netip.Addr) string {
	reason = singleLine(reason)
	var sb strings.Builder
	sb.WriteString("bannable ")
	if reason != "" {
		sb.WriteString(reason)
		sb.WriteByte(' ')
	}
	sb.WriteString(banIP(ip).String())
	return sb.String()
}
