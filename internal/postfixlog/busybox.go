package postfixlog

import "strings"

// skipFacPrio skips the word BusyBox's syslogd (Alpine's, and many a
// small system's) writes between the host and the tag, its facility and
// priority: "Dec  7 10:00:00 relay mail.info postfix/smtp[103]: ...". A
// tag holds no space, so the word is syslogd's, never Postfix's text.
func skipFacPrio(s string) string {
	if word, rest, ok := strings.Cut(s, " "); ok && isFacPrio(word) {
		return rest
	}
	return s
}

// isFacPrio reports whether s is BusyBox syslogd's "FACILITY.PRIORITY"
// (parse_fac_prio_20: "mail.info", "local7.err"), or the "<N>" it writes
// for a value without names.
func isFacPrio(s string) bool {
	if n, ok := strings.CutPrefix(s, "<"); ok {
		n, ok = strings.CutSuffix(n, ">")
		return ok && isDigits(n) && len(n) <= 3
	}
	fac, prio, ok := strings.Cut(s, ".")
	return ok && facilities[fac] && priorities[prio]
}

// facilities and priorities are the names BusyBox's syslogd writes
// (bb_facilitynames and bb_prioritynames, from syslog.h).
var (
	facilities = map[string]bool{"kern": true, "user": true, "mail": true, "daemon": true, "auth": true, "syslog": true,
		"lpr": true, "news": true, "uucp": true, "cron": true, "authpriv": true, "ftp": true, "security": true, "mark": true,
		"local0": true, "local1": true, "local2": true, "local3": true, "local4": true, "local5": true, "local6": true, "local7": true}
	priorities = map[string]bool{"emerg": true, "panic": true, "alert": true, "crit": true, "err": true, "error": true,
		"warn": true, "warning": true, "notice": true, "info": true, "debug": true}
)
