package config

import (
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/logfile"
)

// Running is what a started relay has that its configuration does not
// say: its version, what it does (Describe), its bound SMTP addresses
// ("ROLE=ADDR" but for plain SMTP), the dashboard's address ("" without
// one) and the spool directory.
type Running struct {
	Version, Mode string
	Addrs         []string
	Dashboard     string
	Spool         string
}

// WriteWhereToLook tells someone who started the relay in a terminal what
// it is doing and where to look: the SMTP addresses with a command to try
// them, the dashboard, the spool and the logs.
func (c *Config) WriteWhereToLook(w io.Writer, r Running) {
	var b strings.Builder
	fmt.Fprintf(&b, "relaykeeper %s is running: %s.\n", r.Version, r.Mode)
	for _, a := range r.Addrs {
		fmt.Fprintf(&b, "  SMTP       %s\n", a)
	}
	if len(r.Addrs) > 0 && !strings.Contains(r.Addrs[0], "=") {
		fmt.Fprintf(&b, "             try: swaks --server %s --to YOUR-ADDRESS\n", Dialable(r.Addrs[0]))
	}
	if r.Dashboard != "" {
		fmt.Fprintf(&b, "  dashboard  http://%s/\n", r.Dashboard)
	} else {
		b.WriteString("  dashboard  off (--admin-http 127.0.0.1:8025 turns it on)\n")
	}
	fmt.Fprintf(&b, "  spool      %s   (relaykeeper queue list --spool-dir %s)\n", r.Spool, r.Spool)
	switch {
	case c.Log.MailLog != "": // a dated name ("%d"): today's file, the one to tail
		fmt.Fprintf(&b, "  mail log   %s\n", logfile.Name(c.Log.MailLog, time.Now()))
	case c.Log.File != "":
		fmt.Fprintf(&b, "  mail log   %s\n", logfile.Name(c.Log.File, time.Now()))
	default:
		b.WriteString("  mail log   here, one line per event\n")
	}
	if c.DeliversByMX() {
		b.WriteString("No smarthost given: mail goes to each recipient's mail server by MX.\n" +
			"Most home and cloud networks block port 25; name a smarthost with --forward-to HOST:PORT.\n")
	}
	if c.Mode == ModeServer {
		b.WriteString("Stop with Ctrl-C (or SIGTERM); SIGHUP re-reads tables and reopens log files.\n")
	}
	io.WriteString(w, b.String())
}

// Dialable turns a wildcard listen address ("[::]:25", "0.0.0.0:25") into
// the loopback address a local client connects to.
func Dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
