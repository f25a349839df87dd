package sdnotify

import (
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestReady: READY=1 and the status go to $NOTIFY_SOCKET, on a path or an
// abstract socket, and the variable is gone afterwards; without it Ready
// does nothing.
func TestReady(t *testing.T) {
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
