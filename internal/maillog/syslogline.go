package maillog

import (
	"strings"
	"time"
)

// FromSyslogLine returns the relay's own line that the system log carries
// in s, and true; for any other line, false. With the shipped systemd unit
// the mail log goes to the journal, and from there (SyslogFacility=mail)
// to /var/log/mail.log, as --syslog sends it too; journalctl prints it the
// same way. Such a line is a syslog header, then the relay's line:
//
//	Dec  7 21:41:34 host relaykeeper[4242]: 2026-12-07T21:41:34.951Z accept id=...
//	2026-12-07T21:41:34.951234+00:00 host relaykeeper[4242]: 2026-12-07T21:41:34.951Z accept ...
//
// The header is read by its grammar (a timestamp of three fields, or one
// in RFC 3339 form, the host, the tag) and only the tag relaykeeper or
// relaykeeper[PID] is taken: another program's line cannot pass for the
// relay's by the text it logs.
func FromSyslogLine(s string) (string, bool) {
	rest, ok := syslogStamp(s)
	if !ok {
		return "", false
	}
	_, rest, ok = strings.Cut(rest, " ") // the host
	if !ok {
		return "", false
	}
	tag, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return "", false
	}
	name, ok := strings.CutSuffix(tag, ":")
	if !ok {
		return "", false
	}
	if n, pid, ok := strings.Cut(name, "["); ok {
		pid, ok = strings.CutSuffix(pid, "]")
		if !ok || pid == "" || strings.Trim(pid, "0123456789") != "" {
			return "", false
		}
		name = n
	}
	if name != "relaykeeper" || rest == "" {
		return "", false
	}
	return rest, true
}

// syslogStamp returns s after its syslog timestamp and the blank after it:
// "Dec  7 21:41:34" (RFC 3164, journalctl's short form; a day under 10
// padded with a blank or a zero), or an RFC 3339 one (rsyslog's and
// journalctl's -o short-iso, with or without a colon in the offset).
func syslogStamp(s string) (string, bool) {
	if first, rest, ok := strings.Cut(s, " "); ok && strings.Contains(first, "T") {
		for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999-0700"} {
			if _, err := time.Parse(layout, first); err == nil {
				return rest, true
			}
		}
		return "", false
	}
	if len(s) < len("Jan _2 15:04:05 ") {
		return "", false
	}
	stamp := s[:len("Jan _2 15:04:05")]
	if _, err := time.Parse(time.Stamp, stamp); err != nil {
		if _, err := time.Parse("Jan 02 15:04:05", stamp); err != nil {
			return "", false
		}
	}
	if s[len(stamp)] != ' ' {
		return "", false
	}
	return s[len(stamp)+1:], true
}
