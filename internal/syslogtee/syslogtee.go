// Package syslogtee copies the relay's log lines to the system log and
// closes standard error: E-MailRelay's --syslog[=FACILITY] and
// --close-stderr.
package syslogtee

import (
	"errors"
	"fmt"
	"io"
	"log/syslog"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
)

// facilities are syslog(3)'s, by the names E-MailRelay's --syslog takes.
var facilities = map[string]syslog.Priority{
	"auth": syslog.LOG_AUTH, "authpriv": syslog.LOG_AUTHPRIV, "cron": syslog.LOG_CRON, "daemon": syslog.LOG_DAEMON,
	"ftp": syslog.LOG_FTP, "kern": syslog.LOG_KERN, "lpr": syslog.LOG_LPR, "mail": syslog.LOG_MAIL,
	"news": syslog.LOG_NEWS, "syslog": syslog.LOG_SYSLOG, "user": syslog.LOG_USER, "uucp": syslog.LOG_UUCP,
	"local0": syslog.LOG_LOCAL0, "local1": syslog.LOG_LOCAL1, "local2": syslog.LOG_LOCAL2, "local3": syslog.LOG_LOCAL3,
	"local4": syslog.LOG_LOCAL4, "local5": syslog.LOG_LOCAL5, "local6": syslog.LOG_LOCAL6, "local7": syslog.LOG_LOCAL7,
}

// Facility reports whether name is a syslog facility's.
func Facility(name string) bool {
	_, ok := facilities[name]
	return ok
}

// Tee returns a writer that writes to w and sends each line written to
// the system log (the socket /dev/log) under facility, tagged
// "relaykeeper": lines of level WARN as warnings, ERROR as errors, the
// rest as information. An empty facility returns w. When the system log
// cannot be reached, Tee says so on w and returns w: the relay runs on,
// as E-MailRelay does without a syslog daemon.
func Tee(w io.Writer, facility string) io.Writer {
	if facility == "" {
		return w
	}
	s, err := syslog.New(facilities[facility]|syslog.LOG_INFO, "relaykeeper")
	if err != nil {
		unreachable.Store(true)
		fmt.Fprintf(w, "relaykeeper: the system log cannot be reached, so the log goes on here only"+
			" (and --close-stderr leaves standard error open): %v\n", err)
		return w
	}
	return tee{w, s}
}

type tee struct {
	w io.Writer
	s *syslog.Writer
}

func (t tee) Write(p []byte) (int, error) {
	n, err := t.w.Write(p)
	for _, line := range strings.Split(strings.TrimRight(string(p), "\n"), "\n") {
		switch level(line) {
		case "ERROR":
			t.s.Err(line)
		case "WARN":
			t.s.Warning(line)
		default:
			t.s.Info(line)
		}
	}
	return n, err
}

// level is a log line's level, as slog wrote it before the message and
// its attributes: the second field of a text line ("time=... level=X"),
// the "level" key of a JSON one (whose string values cannot hold one, the
// quotes escaped). A "level=ERROR" later in a line is a client's text (a
// traced command, a quoted address) and must not raise its priority; a
// mail-log line has no level.
func level(line string) string {
	if strings.HasPrefix(line, "{") {
		if _, v, ok := strings.Cut(line, `"level":"`); ok {
			v, _, _ = strings.Cut(v, `"`)
			return v
		}
		return ""
	}
	_, rest, _ := strings.Cut(line, " ")
	if v, ok := strings.CutPrefix(rest, "level="); ok {
		v, _, _ = strings.Cut(v, " ")
		return v
	}
	return ""
}

// unreachable is set when Tee could not reach the system log: the log
// then has standard error only, which CloseStderr leaves open.
var unreachable atomic.Bool

// CloseStderr points the process's standard error at /dev/null, as
// E-MailRelay's --close-stderr closes it once started, so that a
// terminal or a pipe it was started from is let go; unless Tee found no
// system log to send the log to instead.
func CloseStderr() error {
	if unreachable.Load() {
		return errors.New("standard error left open: the log has nowhere else to go")
	}
	f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return syscall.Dup3(int(f.Fd()), 2, 0)
}
