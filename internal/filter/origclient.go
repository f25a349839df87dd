package filter

import "strings"

// OriginalClientField is the field the relay writes above a message it
// hands the content filter: the client that submitted it, and its verified
// host name if it has one, for the reinject listener (internal/smtpd).
func OriginalClientField(client, name string) string {
	v := client
	if name != "" && !strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		v += " name=" + name
	}
	return "X-Relaykeeper-Original-Client: " + v + "\r\n"
}

// SplitOriginalClient reads OriginalClientField's value.
func SplitOriginalClient(v string) (client, name string) {
	f := strings.Fields(v)
	if len(f) == 0 {
		return "", ""
	}
	for _, kv := range f[1:] {
		if n, ok := strings.CutPrefix(kv, "name="); ok {
			name = n
		}
	}
	return f[0], name
}
