package pickup

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/envelope"
)

// Request is a submission as its command line asks for it, before the
// message is read.
type Request struct {
	// Sender is -f's address; SenderGiven says whether -f was given at
	// all. The zero Address ("-f ''", "-f '<>'") is the null sender.
	Sender      envelope.Address
	SenderGiven bool
	// Recipients are the addresses given, each once.
	Recipients []string
	// FromHeaders is -t: the To, Cc and Bcc fields add recipients.
	FromHeaders bool
	// DSN is -N, -R and -V (ParseDSN).
	DSN DSN
	// Origin is the domain addresses without one get (ParseArgsIn),
	// the default sender's too; "" leaves the default sender's to the
	// host.
	Origin string
}

// ParseArgs reads a submission's command line: the recipient arguments,
// each a comma-separated list of addresses with or without <>, and -f's
// sender if given. Without recipients, -t must take them from the header.
func ParseArgs(rcpts []string, from string, fromGiven, fromHeaders bool) (Request, error) {
	return ParseArgsIn(rcpts, from, fromGiven, fromHeaders, "")
}

// ParseArgsIn is ParseArgs with origin, the domain an address without one
// gets ("root" is root@ORIGIN), as Postfix's sendmail qualifies cron's
// "sendmail root" with $myorigin; with origin "", such an address is an
// error.
func ParseArgsIn(rcpts []string, from string, fromGiven, fromHeaders bool, origin string) (Request, error) {
	r := Request{SenderGiven: fromGiven, FromHeaders: fromHeaders, Origin: origin}
	seen := map[string]bool{}
	for _, arg := range rcpts {
		for _, s := range strings.Split(arg, ",") {
			s = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(s), "<"), ">")
			if s == "" {
				continue
			}
			a, err := parseIn(s, origin)
			if err != nil {
				return Request{}, fmt.Errorf("pickup: recipient %q: %w", s, err)
			}
			r.Recipients = addOnce(r.Recipients, seen, a)
		}
	}
	if fromGiven {
		if s := strings.TrimSpace(from); s != "" && s != "<>" {
			var err error
			if r.Sender, err = parseIn(strings.TrimSuffix(strings.TrimPrefix(s, "<"), ">"), origin); err != nil {
				return Request{}, fmt.Errorf("pickup: sender %q: %w", from, err)
			}
		}
	}
	if len(r.Recipients) == 0 && !fromHeaders {
		return Request{}, errors.New("pickup: no recipients: give addresses, or -t to take them from the headers")
	}
	return r, nil
}

// parseIn parses an address, giving one without a domain origin's.
func parseIn(s, origin string) (envelope.Address, error) {
	a, err := envelope.Parse(s)
	if err != nil && origin != "" && !strings.Contains(s, "@") {
		if q, qerr := envelope.Parse(s + "@" + origin); qerr == nil {
			return q, nil
		}
	}
	return a, err
}

func addOnce(list []string, seen map[string]bool, a envelope.Address) []string {
	if s := a.String(); !seen[s] {
		seen[s] = true
		list = append(list, s)
	}
	return list
}

// Submission completes the request from the message m: with -t, the
// header's recipients join those given (each once); without -f, the
// sender is m's default sender (DefaultSender with user and host). Host,
// UID and Now go into the Submission as they are.
func (r Request) Submission(m *Message, user, host string, uid int, now time.Time) (Submission, error) {
	s := Submission{Sender: r.Sender, Recipients: r.Recipients, DSN: r.DSN, Host: host, UID: uid, Now: now}
	m.qualify(r.Origin)
	if r.FromHeaders {
		list, err := m.HeaderRecipients()
		if err != nil {
			return Submission{}, err
		}
		seen := map[string]bool{}
		for _, a := range r.Recipients {
			seen[a] = true
		}
		for _, a := range list {
			s.Recipients = addOnce(s.Recipients, seen, a)
		}
		if len(s.Recipients) == 0 {
			return Submission{}, errors.New("pickup: no recipients in the To, Cc or Bcc headers")
		}
	}
	if !r.SenderGiven {
		var err error
		if s.Sender, err = m.DefaultSender(user, cmp.Or(r.Origin, host)); err != nil {
			return Submission{}, fmt.Errorf("pickup: no sender: give -f ADDRESS (%w)", err)
		}
	}
	return s, nil
}

// LoginName is the invoking user's name, for the default sender.
func LoginName() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	for _, v := range []string{"LOGNAME", "USER"} {
		if s := os.Getenv(v); s != "" {
			return s
		}
	}
	return "nobody"
}
