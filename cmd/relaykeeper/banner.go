package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"golang.org/x/term"

	"github.com/relaykeeper/relaykeeper/internal/config"
)

// isTerminal says whether a standard stream (an io.Reader or io.Writer) is
// a terminal: passwd then prompts, the relay tells the person watching
// where to look, and long commands show progress. /dev/null is not one.
func isTerminal(stream any) bool {
	f, ok := stream.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printWhereToLook tells someone who started the relay in a terminal what
// it is doing and where to look: the SMTP addresses with a command to try
// them, the dashboard, the spool and the logs.
func (r *relay) printWhereToLook(addrs []string, mode string, fe *frontends) {
	var b strings.Builder
	fmt.Fprintf(&b, "relaykeeper %s is running: %s.\n", version, mode)
	for _, a := range addrs {
		fmt.Fprintf(&b, "  SMTP       %s\n", a)
	}
	if len(addrs) > 0 && !strings.Contains(addrs[0], "=") {
		fmt.Fprintf(&b, "             try: swaks --server %s --to YOUR-ADDRESS\n", dialable(addrs[0]))
	}
	if fe != nil && fe.httpAddr != "" {
		fmt.Fprintf(&b, "  dashboard  http://%s/\n", fe.httpAddr)
	} else {
		b.WriteString("  dashboard  off (--admin-http 127.0.0.1:8025 turns it on)\n")
	}
	fmt.Fprintf(&b, "  spool      %s   (relaykeeper queue list --spool-dir %s)\n", r.spool.Dir(), r.spool.Dir())
	switch {
	case r.cfg.Log.MailLog != "":
		fmt.Fprintf(&b, "  mail log   %s\n", r.cfg.Log.MailLog)
	case r.cfg.Log.File != "":
		fmt.Fprintf(&b, "  mail log   %s\n", r.cfg.Log.File)
	default:
		b.WriteString("  mail log   here, one line per event\n")
	}
	if r.cfg.DeliversByMX() {
		b.WriteString("No smarthost given: mail goes to each recipient's mail server by MX.\n" +
			"Most home and cloud networks block port 25; name a smarthost with --forward-to HOST:PORT.\n")
	}
	if r.cfg.Mode == config.ModeServer {
		b.WriteString("Stop with Ctrl-C (or SIGTERM); SIGHUP re-reads tables and reopens log files.\n")
	}
	io.WriteString(r.stderr, b.String())
}

// dialable turns a wildcard listen address ("[::]:25", "0.0.0.0:25") into
// the loopback address a local client connects to.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
