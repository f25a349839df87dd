package sendmail

import (
	"bytes"
	"cmp"
	"io"
	"os"
	"os/user"
	"strings"
)

// SubmitArgs are the arguments of "relaykeeper submit" that do what a
// Deliver invocation asks, after the configuration switches.
func (inv Invocation) SubmitArgs() []string {
	var args []string
	if inv.FromSet {
		from := inv.From
		if from == "" {
			from = "<>"
		}
		args = append(args, "-f", from)
	}
	if inv.Headers {
		args = append(args, "-t")
	}
	for _, o := range [][2]string{{"-N", inv.Notify}, {"-R", inv.Ret}, {"-V", inv.EnvID}} {
		if o[1] != "" {
			args = append(args, o[0], o[1])
		}
	}
	return append(args, inv.Recipients...)
}

// Message returns the message read from r as sendmail would send it: with
// "From: FULL NAME <sender>" added when -F was given and the message has
// no From field. The sender is -f's, else USER@ORIGIN; an address without
// a domain gets origin, and origin "" is the host's name (Postfix's
// $myorigin, $myhostname by default).
func (inv Invocation) Message(r io.Reader, origin string) (io.Reader, error) {
	if inv.FullName == "" {
		return r, nil
	}
	msg, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if !HasField(msg, "From") {
		addr := inv.From
		if addr == "" {
			addr = localUser()
		}
		if !strings.Contains(addr, "@") {
			addr += "@" + cmp.Or(origin, localHost())
		}
		msg = append([]byte(FromField(inv.FullName, addr)), msg...)
	}
	return bytes.NewReader(msg), nil
}

// localUser is the invoking user's name, the local part of sendmail's
// sender when none is given.
func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "root"
}

// localHost is the host's name, the domain of sendmail's sender when no
// configuration gives one.
func localHost() string {
	if host, err := os.Hostname(); err == nil && host != "" {
		return host
	}
	return "localhost"
}

// DefaultConfigFile is read when -C does not name another and it exists,
// since sendmail's callers cannot pass --config.
const DefaultConfigFile = "/etc/relaykeeper/relaykeeper.toml"

// Config is the configuration file the invocation reads: -C's, else
// DefaultConfigFile if it exists, else none ("").
func (inv Invocation) Config() string {
	if inv.ConfigFile != "" {
		return inv.ConfigFile
	}
	if _, err := os.Stat(DefaultConfigFile); err == nil {
		return DefaultConfigFile
	}
	return ""
}
