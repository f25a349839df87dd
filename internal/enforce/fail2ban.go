package enforce

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

// MaxBanLine is the longest BanLine: with the header syslog puts before
// it ("<13>Nov 22 10:00:10 relay-enforcer[4194304]: ", a host name when
// forwarded) it fits in RFC 3164's 1024 bytes.
const MaxBanLine = 900

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
//
// The line is at most MaxBanLine bytes: REASON is cut (ending in "...")
// to fit, never the IP. A syslog daemon keeps 1024 bytes of a message
// (RFC 3164), and the companion's REASON holds the refused recipient, text
// the client chose: a longer line was cut before the IP, and a recipient
// holding another address at the cut had fail2ban ban that address.
func BanLine(reason string, ip netip.Addr) string {
	ip = banIP(ip)
	return BanLineNet(reason, netip.PrefixFrom(ip, ip.BitLen()))
}

// BanLineNet is the line for a ban of a network, written after BanLine's
// for the client itself: "bannable-network REASON ADDR/LEN"
// (2001:db8:1:2::/64), which the shipped filter's <SUBNET> reads and bans
// whole (etc/fail2ban/filter.d/relaykeeper.conf). A jail made for
// relay-enforcer ("bannable.* <HOST>$", its manual's) matches BanLine's
// line, which ends in the client's address as relay-enforcer's does, and
// not this one: it bans the address alone, as it always did.
func BanLineNet(reason string, p netip.Prefix) string {
	reason = singleLine(reason)
	addr := banTarget(p)
	keyword := "bannable "
	if p.Bits() < p.Addr().BitLen() {
		keyword = "bannable-network "
	}
	if room := MaxBanLine - len(keyword) - len(" ") - len(addr); len(reason) > room {
		cut := room - len("...")
		for cut > 0 && !utf8.RuneStart(reason[cut]) {
			cut--
		}
		reason = strings.TrimSpace(reason[:cut]) + "..."
	}
	var sb strings.Builder
	sb.WriteString(keyword)
	if reason != "" {
		sb.WriteString(reason)
		sb.WriteByte(' ')
	}
	sb.WriteString(addr)
	return sb.String()
}
