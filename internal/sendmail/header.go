package sendmail

import (
	"bytes"
	"mime"
	"strings"
)

// HasField says whether the header of msg (LF or CRLF line endings) has a
// field named name. The header ends at the first empty line, or at the
// first line that is neither a field nor a continuation (RFC 5322 2.2).
func HasField(msg []byte, name string) bool {
	for len(msg) > 0 {
		line := msg
		if i := bytes.IndexByte(msg, '\n'); i >= 0 {
			line, msg = msg[:i], msg[i+1:]
		} else {
			msg = nil
		}
		line = bytes.TrimSuffix(line, []byte("\r"))
		if len(line) == 0 {
			return false
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || bytes.ContainsAny(line[:colon], " \t") {
			return false
		}
		if strings.EqualFold(string(line[:colon]), name) {
			return true
		}
	}
	return false
}

// FromField is the From header field sendmail adds for -F to a message
// that lacks one: the name, RFC 2047-encoded when it is not ASCII and
// quoted when it holds specials, and the address. It ends in LF, as the
// input of sendmail does.
func FromField(fullName, addr string) string {
	if fullName == "" {
		return "From: " + addr + "\n"
	}
	name := mime.QEncoding.Encode("utf-8", fullName)
	if name == fullName && strings.ContainsAny(fullName, "()<>[]:;@\\,.\"") {
		name = `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(fullName) + `"`
	}
	return "From: " + name + " <" + addr + ">\n"
}
