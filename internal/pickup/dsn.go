package pickup

import (
	"errors"
	"strings"
)

// DSN is what a submission asks of delivery status notifications, as
// Postfix's sendmail -N, -R and -V ask it (RFC 3461's NOTIFY for every
// recipient, RET and ENVID). The zero DSN asks nothing: the relay's
// defaults.
type DSN struct {
	Notify string // "NEVER", or some of "SUCCESS,FAILURE,DELAY"
	Ret    string // "FULL" or "HDRS"
	EnvID  string
}

// ErrBadNotify is ParseDSN's error for a -N it ignored, as Postfix's
// sendmail does ("bad -N option value -- ignored"): the message goes with
// the default notices rather than not at all.
var ErrBadNotify = errors.New("pickup: -N: want never, or some of success, failure and delay; ignored")

// ParseDSN checks -N, -R and -V's values (empty for not given) and returns
// them as the spool keeps them: upper case, NOTIFY's words comma-separated.
// A bad -N is left out, with ErrBadNotify, and the rest returned.
func ParseDSN(notify, ret, envid string) (DSN, error) {
	d, err := parseRetEnvID(ret, envid)
	if err != nil || notify == "" {
		return d, err
	}
	n, ok := parseNotify(notify)
	if !ok {
		return d, ErrBadNotify
	}
	d.Notify = n
	return d, nil
}

// parseNotify returns a NOTIFY value in the spool's form, and whether it
// is one (RFC 3461 section 4.1: NEVER stands alone).
func parseNotify(notify string) (string, bool) {
	seen := map[string]bool{}
	var words []string
	for _, w := range strings.Split(notify, ",") {
		w = strings.ToUpper(strings.TrimSpace(w))
		switch w {
		case "NEVER", "SUCCESS", "FAILURE", "DELAY":
		default:
			return "", false
		}
		if !seen[w] {
			seen[w] = true
			words = append(words, w)
		}
	}
	return strings.Join(words, ","), !seen["NEVER"] || len(words) == 1
}

// parseRetEnvID checks -R and -V, which Postfix's sendmail refuses when
// wrong (EX_USAGE).
func parseRetEnvID(ret, envid string) (DSN, error) {
	var d DSN
	switch r := strings.ToUpper(ret); r {
	case "", "FULL", "HDRS":
		d.Ret = r
	default:
		return DSN{}, errors.New("pickup: -R " + ret + ": want hdrs or full")
	}
	if len(envid) > 100 || strings.ContainsFunc(envid, func(c rune) bool { return c < ' ' || c > '~' }) {
		// RFC 3461 section 4.4: printable ASCII, 100 characters
		// xtext-encoded (checked here decoded, as Postfix does).
		return DSN{}, errors.New("pickup: -V: an envelope id is at most 100 printable ASCII characters")
	}
	d.EnvID = envid
	return d, nil
}

// ParseRequest is ParseArgsIn with -N, -R and -V's values: a bad -N is no
// error (Postfix's sendmail ignores it) but a warning to show.
func ParseRequest(rcpts []string, from string, fromGiven, fromHeaders bool, notify, ret, envid, origin string) (r Request, warning string, err error) {
	if r, err = ParseArgsIn(rcpts, from, fromGiven, fromHeaders, origin); err != nil {
		return r, "", err
	}
	if r.DSN, err = ParseDSN(notify, ret, envid); errors.Is(err, ErrBadNotify) {
		return r, strings.TrimPrefix(err.Error(), "pickup: "), nil
	}
	return r, "", err
}
