package sdnotify

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReady: READY=1 and the status go to $NOTIFY_SOCKET, on a path or an
// abstract socket, and the variable is gone afterwards; without it Ready
// does nothing.
func TestReady(t *testing.T) {
	forget()
	if err := ready("x"); err != nil {
		t.Fatalf("Ready without NOTIFY_SOCKET: %v", err)
	}
	path := filepath.Join(t.TempDir(), "notify")
	for _, c := range []struct{ env, listen string }{
		{path, path},
		{"@rk-sdnotify-test-" + filepath.Base(filepath.Dir(path)), "\x00rk-sdnotify-test-" + filepath.Base(filepath.Dir(path))},
	} {
		ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: c.listen, Net: "unixgram"})
		if err != nil {
			t.Fatal(err)
		}
		t.Setenv("NOTIFY_SOCKET", c.env)
		forget()
		if err := ready("listening on\n127.0.0.1:25"); err != nil {
			t.Fatalf("Ready(%s): %v", c.env, err)
		}
		if v, ok := os.LookupEnv("NOTIFY_SOCKET"); ok {
			t.Errorf("NOTIFY_SOCKET=%q left in the environment", v)
		}
		ln.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 512)
		n, err := ln.Read(b)
		ln.Close()
		if want := "READY=1\nSTATUS=listening on 127.0.0.1:25\n"; err != nil || string(b[:n]) != want {
			t.Errorf("%s got %q, %v; want %q", c.env, b[:n], err, want)
		}
	}
}

// forget makes the next notice take $NOTIFY_SOCKET again, as at start.
func forget() {
	sock.Lock()
	sock.taken = false
	sock.Unlock()
}

// TestS25ReloadingAndStopping: after READY=1 took $NOTIFY_SOCKET out of
// the environment, the relay can still tell systemd that it reloads
// (RELOADING=1 with MONOTONIC_USEC, then READY=1 again) and that it stops
// (STOPPING=1): the socket's name is kept.
func TestS25ReloadingAndStopping(t *testing.T) {
	path := filepath.Join(t.TempDir(), "notify")
	ln, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	forget()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	Ready(log, "listening")
	Reloading(log)
	Ready(log, "listening")
	Stopping(log)
	for _, want := range []string{"READY=1\n", "RELOADING=1\nMONOTONIC_USEC=", "READY=1\n", "STOPPING=1\n"} {
		ln.SetReadDeadline(time.Now().Add(5 * time.Second))
		b := make([]byte, 512)
		n, err := ln.Read(b)
		if err != nil || !strings.HasPrefix(string(b[:n]), want) {
			t.Fatalf("got %q, %v; want %q...", b[:n], err, want)
		}
	}
}
