package smtpd

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestDur19ServeAfterShutdown: the daemon starts each listener's Serve in
// a goroutine; a SIGTERM right after start may run Shutdown before that
// goroutine has run. Serve must then return at once (and close its
// listener) rather than accept forever on a server shut down: the daemon
// waited for it, and never stopped until killed.
func TestDur19ServeAfterShutdown(t *testing.T) {
	srv := bareServer(t, nil)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve after Shutdown: %v; want nil", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve after Shutdown still accepting after 3s; the daemon would never stop")
	}
	if c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("the listener still accepts connections after Shutdown")
	}
}

// TestDur19ShutdownDuringServe: Shutdown racing with Serve's start, many
// times over; every Serve returns.
func TestDur19ShutdownDuringServe(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		srv := bareServer(t, sp)
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- srv.Serve(l) }()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		srv.Shutdown(ctx)
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("round %d: Serve: %v; want nil after Shutdown", i, err)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("round %d: Serve still running 3s after Shutdown", i)
		}
		l.Close()
	}
}

// bareServer is a Server with the usual test options on sp (a new spool
// if nil), not yet serving.
func bareServer(t *testing.T, sp *spool.Spool) *Server {
	t.Helper()
	if sp == nil {
		var err error
		if sp, err = spool.Open(t.TempDir(), nil); err != nil {
			t.Fatal(err)
		}
	}
	return New(Options{Domain: "relay.test", Spool: sp, MailLog: maillog.New(&syncBuf{}),
		IdleTimeout: 5 * time.Second, MaxMessageSize: 1 << 20, MaxRecipients: 10})
}

// TestDur19StorageReply: ENOSPC and EDQUOT, however wrapped, are a full
// disk (452 4.3.1); EIO, EROFS and the rest a local error (451 4.3.0).
func TestDur19StorageReply(t *testing.T) {
	for _, c := range []struct {
		err  error
		want int
	}{
		{&os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}, 452},
		{fmt.Errorf("spool: journal write: %w", syscall.EDQUOT), 452},
		{&os.PathError{Op: "sync", Path: "x", Err: syscall.EIO}, 451},
		{&os.PathError{Op: "open", Path: "x", Err: syscall.EROFS}, 451},
		{errors.New("spool: journal closed"), 451},
	} {
		if got := storageReply(c.err); got.Code != c.want {
			t.Errorf("storageReply(%v) = %d %v; want %d", c.err, got.Code, got.EnhancedCode, c.want)
		}
	}
}
