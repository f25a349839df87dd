// Package sdnotify tells systemd what the relay is doing (sd_notify(3)):
// ready, reloading on SIGHUP, stopping; for the shipped unit's Type=notify.
package sdnotify

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// sock is $NOTIFY_SOCKET, taken out of the environment at the first
// notice, so that the programs the relay runs (filters, verifiers) do not
// speak for it, and kept here for the later ones.
var sock struct {
	sync.Mutex
	name  string
	taken bool
}

func socket() string {
	sock.Lock()
	defer sock.Unlock()
	if !sock.taken {
		sock.name, sock.taken = os.Getenv("NOTIFY_SOCKET"), true
		os.Unsetenv("NOTIFY_SOCKET")
		if strings.HasPrefix(sock.name, "@") {
			sock.name = "\x00" + sock.name[1:] // an abstract socket
		}
	}
	return sock.name
}

// Ready sends "READY=1" and "STATUS=status": at start, and again when a
// reload (Reloading) is over. Without $NOTIFY_SOCKET it does nothing; a
// socket that cannot be reached is logged as a warning on log: the relay
// runs on.
func Ready(log *slog.Logger, status string) {
	if err := ready(status); err != nil {
		log.Warn("systemd not told that the relay is ready (NOTIFY_SOCKET)", "err", err)
	}
}

func ready(status string) error {
	return notify("READY=1\nSTATUS=" + strings.ReplaceAll(status, "\n", " ") + "\n")
}

// Reloading says a SIGHUP's reload has begun (systemctl shows the unit
// "reloading"); Ready ends it. MONOTONIC_USEC is what a unit of
// Type=notify-reload (systemd 253) also asks for.
func Reloading(log *slog.Logger) {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	usec := time.Duration(ts.Nano()) / time.Microsecond
	if err := notify(fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d\n", usec)); err != nil {
		log.Warn("systemd not told that the relay is reloading (NOTIFY_SOCKET)", "err", err)
	}
}

// Stopping says the relay is shutting down ("deactivating"), so that a
// stop that takes the shutdown grace is not taken for a hang.
func Stopping(log *slog.Logger) {
	if err := notify("STOPPING=1\n"); err != nil {
		log.Warn("systemd not told that the relay is stopping (NOTIFY_SOCKET)", "err", err)
	}
}

func notify(state string) error {
	name := socket()
	if name == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte(state))
	return err
}
