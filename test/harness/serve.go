package harness

import (
	"net"
	"testing"
)

// ServeTCP listens on 127.0.0.1 and runs serve for each connection, on a
// goroutine of its own, until the test ends; it returns the address. The
// connection is closed when serve returns.
func ServeTCP(t testing.TB, serve func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("harness: ServeTCP: %v", err)
	}
	Serve(t, ln, serve)
	return ln.Addr().String()
}

// Serve is ServeTCP on a listener of the caller's (a unix socket, say),
// which it closes when the test ends.
func Serve(t testing.TB, ln net.Listener, serve func(net.Conn)) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
}
