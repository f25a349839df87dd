package pickup

import (
	"strings"
)

// addressFields are the header fields whose addresses a local submission
// may write without a domain, as Postfix's cleanup rewrites them.
var addressFields = []string{"From", "Sender", "Reply-To", "To", "Cc", "Bcc",
	"Resent-From", "Resent-Sender", "Resent-Reply-To", "Resent-To", "Resent-Cc", "Resent-Bcc",
	"Return-Receipt-To", "Errors-To", "Disposition-Notification-To"}

// qualify gives every address without a domain in the address fields
// origin's, as Postfix's cleanup does for local mail with
// append_at_myorigin: Debian's cron writes "From: root (Cron Daemon)" and
// "To: root", mdadm and unattended-upgrades "To: root" under -t, and a
// provider refuses a From without a domain (Gmail's 5.7.1 "missing a
// valid address in From: header"). A field that holds nothing to qualify,
// or that cannot be read (a group, a quoted local part), stays as written.
func (m *Message) qualify(origin string) {
	if origin == "" {
		return
	}
	for i, f := range m.fields {
		if !isAddressField(f.name) {
			continue
		}
		v := f.raw[len(f.name)+1:]
		v = strings.TrimSpace(strings.NewReplacer("\r\n ", " ", "\r\n\t", "\t", "\r\n", "").Replace(v))
		elems := splitAddressList(v)
		changed := false
		for j, e := range elems {
			if q, ok := qualifyElement(e, origin); ok {
				elems[j], changed = q, true
			}
		}
		if changed {
			// One address a line: qualifying must not make a line too long.
			m.fields[i].raw = f.name + ": " + strings.Join(elems, ",\r\n ") + "\r\n"
		}
	}
}

func isAddressField(name string) bool {
	for _, n := range addressFields {
		if strings.EqualFold(n, name) {
			return true
		}
	}
	return false
}

// splitAddressList splits a field's value at the commas outside quotes,
// comments and angle brackets, each element trimmed.
func splitAddressList(v string) []string {
	var out []string
	angle, start := false, 0
	eachBare(v, func(i int) {
		switch v[i] {
		case '<':
			angle = true
		case '>':
			angle = false
		case ',':
			if !angle {
				out = append(out, strings.TrimSpace(v[start:i]))
				start = i + 1
			}
		}
	})
	return append(out, strings.TrimSpace(v[start:]))
}

// eachBare calls f with the index of each byte of v outside quoted
// strings and (comments), nested, the quotes and parentheses excluded.
func eachBare(v string, f func(i int)) {
	depth, quoted := 0, false
	for i := 0; i < len(v); i++ {
		switch c := v[i]; {
		case c == '\\' && (quoted || depth > 0):
			i++
		case c == '"' && depth == 0:
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			f(i)
		}
	}
}

// qualifyElement returns e with origin added to its address if the
// address is a dot-atom local part alone: "root", "root (Cron Daemon)",
// "Root <root>". Anything else is left alone (ok false).
func qualifyElement(e, origin string) (string, bool) {
	if lt := lastAngle(e); lt >= 0 {
		gt := strings.IndexByte(e[lt:], '>')
		if gt < 0 {
			return e, false
		}
		local := strings.TrimSpace(e[lt+1 : lt+gt])
		if !isDotAtom(local) {
			return e, false
		}
		return e[:lt] + "<" + local + "@" + origin + ">" + e[lt+gt+1:], true
	}
	// An address alone, perhaps with comments before or after it.
	if strings.ContainsAny(e, "@:;\"\\") {
		return e, false
	}
	bare := stripComments(e)
	if !isDotAtom(bare) {
		return e, false
	}
	i := outsideComments(e)
	if i < 0 || !strings.HasPrefix(e[i:], bare) {
		return e, false // "ro(x)ot": not worth guessing
	}
	return e[:i+len(bare)] + "@" + origin + e[i+len(bare):], true
}

// lastAngle is the index of the last '<' of e outside quotes and
// comments, or -1: a '<' in a comment ("root (Ops <ops>)") opens no
// address.
func lastAngle(e string) int {
	at := -1
	eachBare(e, func(i int) {
		if e[i] == '<' {
			at = i
		}
	})
	return at
}

// outsideComments is the index of the first byte of s that is neither
// space nor in a comment, or -1.
func outsideComments(s string) int {
	at := -1
	outsideEach(s, func(i int) bool {
		if s[i] == ' ' || s[i] == '\t' {
			return true
		}
		at = i
		return false
	})
	return at
}

// stripComments removes (comments), nested, and trims what is left.
func stripComments(s string) string {
	var b strings.Builder
	outsideEach(s, func(i int) bool { b.WriteByte(s[i]); return true })
	return strings.TrimSpace(b.String())
}

// outsideEach calls f with the index of each byte of s outside
// (comments), nested, until f returns false.
func outsideEach(s string, f func(i int) bool) {
	depth := 0
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case depth == 0:
			if !f(i) {
				return
			}
		}
	}
}

// isDotAtom reports whether s is an RFC 5322 dot-atom: atext runs joined
// by single dots.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0 || c >= 0x80 {
			continue
		}
		return false
	}
	return true
}
