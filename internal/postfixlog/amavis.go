package postfixlog

import (
	"strings"
)

// parseAmavis reads amavis's summary line:
//
//	(12345-01) Passed CLEAN {RelayedInbound}, [1.2.3.4]:5678 [1.2.3.4]
//	<from> -> <to>,<to2>, Queue-ID: ABC, Message-ID: <id>, mail_id: x,
//	Hits: -1.2, size: 1234, queued_as: DEF, 1234 ms
//
// It is read from the left up to the Queue-ID, the addresses as RFC 5321
// paths: everything before the Queue-ID is amavis's or a parsable address.
// Message-ID and, in some templates, Subject are text the sender chose;
// they come before queued_as, which is taken from its last occurrence, and
// only from a line of a message amavis passed (re-injected), and that
// amavis did not cut.
func (e *Event) parseAmavis(msg string) bool {
	// amavis writes at most $logline_maxlen (980) characters a line and
	// goes on in the next ("(ID) ...rest"; Amavis/Log.pm): a line it cut
	// ends in "...", and its queued_as is in a later piece, while a
	// sender's long Message-ID may hold one of its own in this one.
	cut := strings.HasSuffix(msg, "...")
	if strings.HasPrefix(msg, "(") {
		_, msg, _ = strings.Cut(msg, ") ")
	}
	// The verdict runs up to " {" or ", ".
	i := strings.IndexAny(msg, ",{")
	if i <= 0 {
		return false
	}
	result, rest := strings.TrimSpace(msg[:i]), msg[i:]
	if strings.HasPrefix(rest, "{") {
		end := strings.IndexByte(rest, '}')
		if end < 0 {
			return false
		}
		rest = rest[end+1:]
	}
	rest, ok := strings.CutPrefix(rest, ", ")
	if !ok {
		return false
	}
	// "[IP]:PORT [IP] " or "LOCAL [IP]:PORT [IP] ": the client and the
	// originating address, before the sender's '<'.
	lt := strings.IndexByte(rest, '<')
	if lt < 0 {
		return false
	}
	var ips []string
	port := false // the first address has a port
	for _, f := range strings.Fields(rest[:lt]) {
		if !strings.HasPrefix(f, "[") {
			continue
		}
		end := strings.IndexByte(f, ']')
		if end < 0 {
			return false
		}
		if ip, ok := parseIP(f[1:end]); ok {
			if len(ips) == 0 {
				port = strings.HasPrefix(f[end+1:], ":")
			}
			ips = append(ips, ip)
		}
	}
	// amavis writes the client ("[:client_addr_port]") only when it knows
	// it, then its guess from the Received fields ("[%e]", without a
	// port), which the sender may have written. A lone address without a
	// port may be either: it is no client.
	if len(ips) == 1 && !port {
		ips = []string{"", ips[0]}
	}
	from, rest, ok := readPath(rest[lt:])
	if !ok {
		return false
	}
	rest, ok = strings.CutPrefix(rest, " -> ")
	if !ok {
		return false
	}
	for {
		if _, rest, ok = readPath(rest); !ok {
			return false
		}
		if !strings.HasPrefix(rest, ",<") {
			break
		}
		rest = rest[1:]
	}
	// ", quarantine: NAME" may come first.
	if v, ok := strings.CutPrefix(rest, ", quarantine: "); ok {
		_, rest, _ = strings.Cut(v, ",")
		rest = "," + rest
	}
	v, ok := strings.CutPrefix(rest, ", Queue-ID: ")
	if !ok {
		return false
	}
	qid, rest, _ := strings.Cut(v, ", ")
	if !isQueueID(qid) {
		return false
	}
	e.Kind = Amavis
	e.QueueID = qid
	e.Result = result
	e.From = from
	if len(ips) > 0 {
		e.ClientIP = ips[0]
	}
	if len(ips) > 1 {
		e.OriginIP = ips[1]
	}
	if v, ok := strings.CutPrefix(rest, "Message-ID: <"); ok {
		if end := strings.Index(v, ">, "); end >= 0 {
			e.MessageID = v[:end]
		}
	}
	// amavis re-injects only what it passes: a blocked message's line has
	// no queued_as of its own, and one in it is the sender's Message-ID.
	if strings.HasPrefix(result, "Passed") && !cut {
		choices := queuedAsFields(rest)
		if len(choices) == 1 {
			e.QueuedAs = choices[0]
		} else if len(choices) > 1 {
			e.QueuedAsChoices = choices
		}
	}
	return true
}

// queuedAsFields returns the ids of every ", queued_as: ID[/ID...]" field
// in the rest of an amavis line. amavis writes one, after the Message-ID
// (the sender's text) and before the Subject and From header fields (the
// sender's text too, in amavis 2.7's template and others): which one is
// amavis's cannot be told by its place.
func queuedAsFields(s string) [][]string {
	var out [][]string
	for {
		i := strings.Index(s, ", queued_as: ")
		if i < 0 {
			return out
		}
		s = s[i+len(", queued_as: "):]
		v, _, _ := strings.Cut(s, ", ")
		var ids []string
		for _, id := range strings.Split(v, "/") {
			if isQueueID(id) {
				ids = append(ids, id)
			}
		}
		if len(ids) > 0 {
			out = append(out, ids)
		}
	}
}
