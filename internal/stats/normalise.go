package stats

import (
	"net"
	"regexp"
	"strings"
)

var (
	// enhancedCode is an RFC 3463 status code after the reply code.
	enhancedCode = regexp.MustCompile(`^[245]\.\d{1,3}\.\d{1,3} `)
	bracketAddr  = regexp.MustCompile(`<[^<>\s]*@[^<>\s]*>`)
	bareAddr     = regexp.MustCompile(`[^\s<>()\[\]"',;:]+@[A-Za-z0-9.-]+[A-Za-z0-9]`)
	ipv4         = regexp.MustCompile(`\b\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?\b`)
	// ipv6 finds candidates; ParseIP decides (a time is not an address).
	ipv6     = regexp.MustCompile(`\[?[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:\.\d{1,3}){0,3}(?:\](?::\d{1,5})?)?`)
	queuedAs = regexp.MustCompile(`(?i)\b((?:queued as|queue id|message id)\s+|id=)[A-Za-z0-9._-]+`)
	longHex  = regexp.MustCompile(`\b[0-9A-Fa-f]{10,}\b`)
)

// NormaliseReply makes replies that differ only in what changes from one
// message or client to the next count as one reason: addresses become
// ADDR, IP addresses IP, queue ids and long hex numbers ID. A multi-line
// reply, logged with each line's "550-5.7.1" prefix, keeps the first prefix
// only; runs of white space become one space.
func NormaliseReply(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	s = joinLines(s)
	s = bracketAddr.ReplaceAllString(s, "<ADDR>")
	s = bareAddr.ReplaceAllString(s, "ADDR")
	s = queuedAs.ReplaceAllString(s, "${1}ID")
	s = ipv6.ReplaceAllStringFunc(s, func(m string) string {
		if a, _, ok := strings.Cut(strings.TrimPrefix(m, "["), "]"); ok && m[0] == '[' {
			if net.ParseIP(a) != nil {
				return "IP" // [addr]:port, as Go's errors write it
			}
			return m
		}
		a := strings.TrimRight(m, ":")
		if net.ParseIP(a) == nil {
			return m
		}
		return "IP" + m[len(a):]
	})
	s = ipv4.ReplaceAllString(s, "IP")
	s = longHex.ReplaceAllString(s, "ID")
	return s
}

// joinLines drops the reply code (and enhanced code) that starts each line
// of a multi-line reply after the first: "451-4.3.0 a 451 4.3.0 b" is
// "451 4.3.0 a b".
func joinLines(s string) string {
	if len(s) < 4 || !isDigits(s[:3]) || s[3] != '-' {
		return s
	}
	code := s[:3]
	enh := enhancedCode.FindString(s[4:])
	body := s[4+len(enh):]
	if enh != "" {
		body = strings.ReplaceAll(body, " "+code+"-"+enh, " ")
		body = strings.ReplaceAll(body, " "+code+" "+enh, " ")
	}
	body = strings.ReplaceAll(body, " "+code+"-", " ")
	body = strings.ReplaceAll(body, " "+code+" ", " ")
	return code + " " + enh + body
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
