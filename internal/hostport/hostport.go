// Package hostport checks the HOST:PORT a setting names for a later
// connection (a net: filter, spamd, a network verifier, a policy service),
// so that a port no connection can use is refused at start and by --check
// rather than at the first message.
package hostport

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode"
)

// Check says whether addr is HOST:PORT with a host and a port that a TCP
// connection can use: a number from 1 to 65535 or a service name
// ("smtp"). The host is not looked up: a name may resolve only later.
func Check(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	switch {
	case err != nil:
		return err
	case host == "":
		return errors.New("missing host")
	case port == "":
		return errors.New("missing port")
	case strings.IndexFunc(host, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) || r == '/' }) >= 0:
		return fmt.Errorf("%q is not a host name or address", host)
	}
	_, err = Port(port)
	return err
}

// Port reads a port: a number from 1 to 65535 or a service name ("smtp").
func Port(port string) (int, error) {
	if port == "" {
		return 0, errors.New("missing port")
	}
	if strings.Trim(port, "0123456789") == "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return 0, fmt.Errorf("port %s is out of range 1-65535", port)
		}
		return n, nil
	}
	n, err := net.LookupPort("tcp", port)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("unknown port or service %q", port)
	}
	return n, nil
}
