package syslogtee

import (
	"io"
	"log/syslog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRev18LevelNotSteered: the syslog priority of a log line was raised
// to err (or warning) whenever "level=ERROR" appeared anywhere in it: a
// client's traced command under --verbose ("EHLO level=ERROR"), or a
// quoted address in a mail-log line, set off an administrator's alerts on
// error lines. Only the line's own level field counts.
func TestRev18LevelNotSteered(t *testing.T) {
	path := filepath.Join(t.TempDir(), "log")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	sw, err := syslog.Dial("unixgram", path, syslog.LOG_MAIL|syslog.LOG_INFO, "relaykeeper")
	if err != nil {
		t.Fatal(err)
	}
	defer sw.Close()
	w := tee{io.Discard, sw}
	// mail (2) * 8 + info 6, warning 4, err 3
	for _, c := range []struct{ line, want string }{
		{`time=2026-12-06T17:00:00Z level=INFO msg=smtp debug_peer=127.0.0.1:1 dir=< line="EHLO level=ERROR"`, "<22>"},
		{`time=2026-12-06T17:00:00Z level=ERROR msg="listener failed"`, "<19>"},
		{`time=2026-12-06T17:00:00Z level=WARN msg=x`, "<20>"},
		{`{"time":"2026-12-06T17:00:00Z","level":"INFO","msg":"smtp","line":"MAIL FROM:<\"level\":\"ERROR\"@x>"}`, "<22>"},
		{`{"time":"2026-12-06T17:00:00Z","level":"ERROR","msg":"x"}`, "<19>"},
		{`2026-12-06T17:00:00Z reject client=127.0.0.1:1 from="<\"a level=WARN b\"@x>"`, "<22>"},
	} {
		w.Write([]byte(c.line + "\n"))
		buf := make([]byte, 4096)
		ln.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, err := ln.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(buf[:n]); !strings.HasPrefix(got, c.want) {
			t.Errorf("%s\nsent as %q; want priority %s", c.line, got[:min(len(got), 5)], c.want)
		}
	}
}
