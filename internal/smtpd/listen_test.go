package smtpd

import (
	"net"
	"syscall"
	"testing"
	"time"
)

// TestListenKeepAlive: with an idle timeout the accepted connections have no
// TCP keep-alive (the timeout ends a vanished client's session); without
// one they keep Go's default, on.
func TestListenKeepAlive(t *testing.T) {
	for _, tc := range []struct {
		idle time.Duration
		want int
	}{{time.Minute, 0}, {0, 1}} {
		l, err := Listen(t.Context(), "127.0.0.1:0", tc.idle)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		sc, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := sc.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		got, serr := 0, error(nil)
		raw.Control(func(fd uintptr) {
			got, serr = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_KEEPALIVE)
		})
		if serr != nil {
			t.Fatal(serr)
		}
		if (got != 0) != (tc.want != 0) {
			t.Errorf("Listen(idle %v): SO_KEEPALIVE = %d; want %d", tc.idle, got, tc.want)
		}
		sc.Close()
		c.Close()
		l.Close()
	}
}
