// Package sendmail reads sendmail's command line, the one that programs
// call /usr/sbin/sendmail with (cron, mail(1), PHP's mail(), git
// send-email), and says what relaykeeper should do: submit a message, speak
// SMTP on the standard input and output, list or run the queue.
//
// The options are sendmail's and Postfix's sendmail(1)'s. Those that only
// tune the old daemon's behaviour (-o options other than -oi, -h, -L, -U,
// -X...) are accepted and ignored, as Postfix does, so that callers written
// for either keep working.
package sendmail

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Mode is what an invocation asks for.
type Mode int

const (
	// Deliver reads a message from the standard input and submits it
	// (the default, -bm).
	Deliver Mode = iota
	// SMTP speaks SMTP on the standard input and output (-bs).
	SMTP
	// ListQueue lists the queue (-bp, or invoked as mailq).
	ListQueue
	// RunQueue makes every queued message due at once (-q).
	RunQueue
	// Newaliases rebuilds the aliases database (-bi, or invoked as
	// newaliases); relaykeeper has none.
	Newaliases
	// HandBack is Deliver run by a pipe: filter for the message it
	// filters (HandBackEnv): the message goes back to the filter
	// (HandBackMessage).
	HandBack
)

// Invocation is what a sendmail command line says.
type Invocation struct {
	Mode Mode
	// From is -f or -r, the envelope sender; FromSet says it was given
	// ("-f ''" and "-f '<>'" set the null sender).
	From    string
	FromSet bool
	// FullName is -F: the sender's name for a From header the message
	// lacks.
	FullName string
	// Headers is -t: take recipients from the To, Cc and Bcc headers.
	Headers bool
	// IgnoreDots is -i or -oi: a line with a single "." does not end the
	// message. relaykeeper always reads to the end of input, so it changes
	// nothing; it is recorded for completeness.
	IgnoreDots bool
	// ErrorMode is -oeX (m: mail errors back, p: print them, q: quiet, w,
	// e); relaykeeper prints errors and exits non-zero whatever it is.
	ErrorMode string
	// ConfigFile is -C: relaykeeper's configuration file.
	ConfigFile string
	// Notify, Ret and EnvID are -N, -R and -V, Postfix's DSN options
	// (RFC 3461's NOTIFY, RET and ENVID), as given.
	Notify, Ret, EnvID string
	// Recipients are the arguments after the options.
	Recipients []string
}

// Names are the program names that make relaykeeper behave as sendmail.
var names = map[string]Mode{"sendmail": Deliver, "mailq": ListQueue, "newaliases": Newaliases}

// Invoked says whether argv0 (the program's name as called) is one of
// sendmail's names: sendmail, mailq or newaliases.
func Invoked(argv0 string) bool {
	_, ok := names[filepath.Base(argv0)]
	return ok
}

// Parse reads sendmail's options. argv0 chooses the default mode: mailq
// lists the queue and newaliases does nothing, whatever the options.
// Options may be clustered as sendmail's getopt allows ("-ti", "-fme@x").
func Parse(argv0 string, args []string) (Invocation, error) {
	inv := Invocation{Mode: names[filepath.Base(argv0)]}
	fixed := inv.Mode != Deliver
	i := 0
	// value returns an option's value: the rest of the word, else the next
	// argument.
	value := func(opt, rest string) (string, error) {
		if rest != "" {
			return rest, nil
		}
		if i+1 >= len(args) {
			return "", fmt.Errorf("option -%s needs a value", opt)
		}
		i++
		return args[i], nil
	}
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
	letters:
		for j := 1; j < len(a); j++ {
			c, rest := a[j], a[j+1:]
			switch c {
			case 't':
				inv.Headers = true
			case 'i':
				inv.IgnoreDots = true
			case 'v', 'n', 'm', 'G', 'U', 'x':
				// verbose, no aliasing, me too, gateway, initial
				// submission: nothing to change here.
			case 'f', 'r':
				v, err := value(string(c), rest)
				if err != nil {
					return inv, err
				}
				inv.From, inv.FromSet = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(v), "<"), ">"), true
				break letters
			case 'F':
				v, err := value("F", rest)
				if err != nil {
					return inv, err
				}
				inv.FullName = v
				break letters
			case 'C':
				v, err := value("C", rest)
				if err != nil {
					return inv, err
				}
				inv.ConfigFile = v
				break letters
			case 'N', 'R', 'V':
				v, err := value(string(c), rest)
				if err != nil {
					return inv, err
				}
				switch c {
				case 'N':
					inv.Notify = v
				case 'R':
					inv.Ret = v
				default:
					inv.EnvID = v
				}
				break letters
			case 'B', 'h', 'L', 'O', 'X':
				// Body type, hop count, syslog tag, option, traffic
				// log: values taken and ignored.
				if _, err := value(string(c), rest); err != nil {
					return inv, err
				}
				break letters
			case 'o':
				if rest == "" {
					return inv, errors.New("option -o needs a letter (-oi, -oem...)")
				}
				switch rest[0] {
				case 'i':
					inv.IgnoreDots = true
				case 'e':
					inv.ErrorMode = rest[1:]
				}
				break letters
			case 'b':
				if rest == "" {
					return inv, errors.New("option -b needs a mode (-bm, -bs, -bp, -bi)")
				}
				m, err := bMode(rest)
				if err != nil {
					return inv, err
				}
				if !fixed {
					inv.Mode = m
				}
				break letters
			case 'q':
				// -q, -q15m, -qR...: run the queue once; an interval
				// means a queue daemon, which is the relay's --poll.
				if !fixed {
					inv.Mode = RunQueue
				}
				break letters
			default:
				return inv, fmt.Errorf("unknown option -%c", c)
			}
		}
	}
	inv.Recipients = append(inv.Recipients, args[i:]...)
	if inv.Mode == Deliver && len(inv.Recipients) == 0 && !inv.Headers {
		return inv, errors.New("no recipients: give addresses, or -t to take them from the headers")
	}
	if handingBack(inv) {
		inv.Mode = HandBack
	}
	return inv, nil
}

func bMode(s string) (Mode, error) {
	switch s {
	case "m":
		return Deliver, nil
	case "s":
		return SMTP, nil
	case "p":
		return ListQueue, nil
	case "i":
		return Newaliases, nil
	case "d", "D":
		return 0, errors.New("-bd (run as a daemon) is not for sendmail's name: run relaykeeper --as-server")
	}
	return 0, fmt.Errorf("unsupported mode -b%s; want -bm, -bs, -bp or -bi", s)
}
