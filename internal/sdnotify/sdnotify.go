// Package sdnotify tells systemd that the relay is ready (sd_notify(3)),
// for the shipped unit's Type=notify.
package sdnotify

import (
	"log/slog"
	"net"
	"os"
	"strings"
)

// Ready sends "READY=1" and "STATUS=status" to the socket named by
// $NOTIFY_SOCKET, if there is one, and then removes the variable from the
// environment, so that the programs the relay runs (filters, verifiers)
// do not speak for it. Without the variable it does nothing; a socket that
// cannot be reached is logged as a warning on log: the relay runs on.
func Ready(log *slog.Logger, status string) {
	if err := ready(status); err != nil {
		log.Warn("systemd not told that the relay is ready (NOTIFY_SOCKET)", "err", err)
	}
}

func ready(status string) error {
	name := os.Getenv("NOTIFY_SOCKET")
	if name == "" {
		return nil
	}
	os.Unsetenv("NOTIFY_SOCKET")
	if strings.HasPrefix(name, "@") {
		name = "\x00" + name[1:] // an abstract socket
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte("READY=1\nSTATUS=" + strings.ReplaceAll(status, "\n", " ") + "\n"))
	return err
}
