package policy

import (
	"net/netip"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/envelope"
)

// trimDot drops a trailing dot, but not a dot-dot (Postfix's
// dup_if_truncate).
func trimDot(name string) string {
	if len(name) > 1 && name[len(name)-1] == '.' && name[len(name)-2] != '.' {
		return name[:len(name)-1]
	}
	return name
}

// validHostname is Postfix's valid_hostname: at most 255 octets of labels
// of 1 to 63 ASCII letters, digits, underscores and hyphens (not first or
// last in a label), not all digits and dots.
func validHostname(name string) bool {
	if name == "" || len(name) > 255 {
		return false
	}
	label, numeric := 0, true
	for i := 0; i < len(name); i++ {
		ch := name[i]
		last := i+1 == len(name)
		switch {
		case ch == '.':
			if label == 0 || last {
				return false
			}
			label = 0
			continue
		case ch == '-':
			if label == 0 || last || name[i+1] == '.' {
				return false
			}
			numeric = false
		case ch >= '0' && ch <= '9':
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch == '_':
			numeric = false
		default:
			return false
		}
		if label++; label > 63 {
			return false
		}
	}
	return !numeric
}

// folded is an address as Postfix looks it up in access tables: in lower
// case (mail_addr_find casefolds it), so that a regexp: or pcre: rule made
// case-sensitive by its i flag sees what Postfix's would.
func folded(addr string) string { return strings.ToLower(addr) }

// bareAddress is Postfix's valid_hostaddr for a HELO name without
// brackets: an IPv4 or IPv6 address, which reject_invalid_helo_hostname
// lets pass.
func bareAddress(name string) bool {
	a, err := netip.ParseAddr(name)
	return err == nil && a.Zone() == ""
}

// routed reports a recipient that names another destination inside it
// (Postfix's RESOLVE_FLAG_ROUTED), or that does not parse at all.
func routed(rcpt string) bool {
	a, err := envelope.Parse(rcpt)
	return err != nil || a.Indirect()
}
