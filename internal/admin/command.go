package admin

import (
	"strconv"
	"strings"
)

// verb is a text-protocol command.
type verb int

const (
	verbEmpty   verb = iota // a blank line: answered with the prompt alone
	verbUnknown             // counts toward the error limit
	verbHTTP                // an HTTP request line: the session is closed
	verbHelp
	verbStatus
	verbList
	verbFailures
	verbUnfailAll
	verbForward
	verbFlush
	verbNotify
	verbPID
	verbSMTP
	verbDNSBL
	verbQuit
	verbTerminate
	verbPassword
	verbInfo
)

// verbs maps command names, in lower case, to verbs. As in E-MailRelay,
// words after a command that takes no arguments are ignored.
var verbs = map[string]verb{
	"help":       verbHelp,
	"status":     verbStatus,
	"list":       verbList,
	"failures":   verbFailures,
	"unfail-all": verbUnfailAll,
	"forward":    verbForward,
	"flush":      verbFlush,
	"notify":     verbNotify,
	"pid":        verbPID,
	"smtp":       verbSMTP,
	"dnsbl":      verbDNSBL,
	"quit":       verbQuit,
	"terminate":  verbTerminate,
	"password":   verbPassword,
	"info":       verbInfo,
}

// httpMethods are the request-line methods that mark a line as HTTP.
var httpMethods = map[string]bool{
	"GET": true, "HEAD": true, "POST": true, "PUT": true, "DELETE": true,
	"CONNECT": true, "OPTIONS": true, "TRACE": true, "PATCH": true,
}

// command is one parsed line of the text protocol.
type command struct {
	verb verb
	// on is the switch's new state for smtp (enable) and dnsbl (start).
	on bool
	// seconds is how long "dnsbl stop N" lasts; 0 is until "dnsbl start".
	seconds uint32
	// secret is password's argument: the rest of the line, trimmed.
	secret string
	// key is info's argument, in lower case; "" when none was given.
	key string
	// usage, when set, is the reply to a known command with wrong
	// arguments; like E-MailRelay's, it does not count as an error.
	usage string
}

// isSpace is E-MailRelay's idea of a word separator.
func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\r' || c == '\n' }

// nextWord returns the first word of s and what follows it.
func nextWord(s string) (word, rest string) {
	i := 0
	for i < len(s) && isSpace(s[i]) {
		i++
	}
	j := i
	for j < len(s) && !isSpace(s[j]) {
		j++
	}
	return s[i:j], s[j:]
}

// asciiLower lower-cases ASCII letters only, so that no other character
// can fold into a command name ("ſtatus" is not "status").
func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// parseCommand parses one line, without its line ending. Command names
// and the words smtp and dnsbl take are case-insensitive.
func parseCommand(line string) command {
	name, rest := nextWord(line)
	if name == "" {
		return command{verb: verbEmpty}
	}
	if httpMethods[name] {
		if _, after := nextWord(rest); strings.HasPrefix(strings.TrimLeft(after, " \t"), "HTTP/") {
			return command{verb: verbHTTP}
		}
	}
	v, ok := verbs[asciiLower(name)]
	if !ok {
		return command{verb: verbUnknown}
	}
	c := command{verb: v}
	switch v {
	case verbPassword:
		c.secret = strings.Trim(rest, " \t\r\n")
		if c.secret == "" {
			c.usage = "usage: password SECRET"
		}
	case verbInfo:
		// E-MailRelay's "info KEY" shows one of its fixed information
		// items; a missing or unknown key is answered with the keys.
		key, more := nextWord(rest)
		extra, _ := nextWord(more)
		c.key = asciiLower(key)
		if _, ok := infoKeys[c.key]; !ok || extra != "" {
			c.usage = infoUsage
		}
	case verbSMTP:
		arg, more := nextWord(rest)
		extra, _ := nextWord(more)
		switch asciiLower(arg) {
		case "enable":
			c.on = true
		case "disable":
		default:
			c.usage = "usage: smtp {disable|enable}"
		}
		if extra != "" {
			c.usage = "usage: smtp {disable|enable}"
		}
	case verbDNSBL:
		arg, more := nextWord(rest)
		n, more := nextWord(more)
		extra, _ := nextWord(more)
		switch {
		case asciiLower(arg) == "start" && n == "":
			c.on = true
		case asciiLower(arg) == "stop" && n == "":
		case asciiLower(arg) == "stop" && isDigits(n):
			secs, err := strconv.ParseUint(n, 10, 32)
			if err != nil {
				c.usage = "usage: dnsbl {start|stop [<timeout>]}"
				break
			}
			c.seconds = uint32(secs)
		default:
			c.usage = "usage: dnsbl {start|stop [<timeout>]}"
		}
		if extra != "" {
			c.usage = "usage: dnsbl {start|stop [<timeout>]}"
		}
	}
	return c
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
