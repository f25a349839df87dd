package connlimit

import (
	"bufio"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	l := Limiter{Max: 3, PerIP: 2}
	for i, c := range []struct {
		ip        netip.Addr
		ok, perIP bool
	}{{a, true, false}, {a, true, false}, {a, false, true}, {b, true, false}, {b, false, false}} {
		if ok, perIP := l.Acquire(c.ip); ok != c.ok || perIP != c.perIP {
			t.Errorf("Acquire %d (%v) = %v, %v; want %v, %v", i, c.ip, ok, perIP, c.ok, c.perIP)
		}
	}
	l.Release(a)
	if ok, _ := l.Acquire(a); !ok {
		t.Errorf("Acquire after Release refused")
	}
	l.Release(a)
	l.Release(a)
	l.Release(b)
	if l.n != 0 || len(l.perIP) != 0 {
		t.Errorf("after releasing everything: n %d, perIP %v; want none", l.n, l.perIP)
	}
}

// TestListener: the connection over the limit hears the refusal and is
// closed; closing a served one (twice) frees its place once.
func TestListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	lim := &Limiter{PerIP: 1}
	l := Listener(inner, lim, func(why string) string { return "no: " + why + "\r\n" })
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func() net.Conn {
		c, err := net.Dial("tcp", inner.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	dial()
	first := <-accepted
	c := dial()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if want := "no: too many connections from 127.0.0.1\r\n"; line != want || err != nil {
		t.Errorf("second connection read %q, %v; want %q", line, err, want)
	}
	first.Close()
	first.Close()
	dial()
	select {
	case c := <-accepted:
		c.Close()
	case <-time.After(5 * time.Second):
		t.Fatal("a connection after the first closed was not accepted")
	}
	if lim.n != 0 {
		t.Errorf("%d connections counted after all closed; want 0", lim.n)
	}
}
