package remote

import (
	"context"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestConnectFailureWords: a failed connection is told in strerror's
// words, as Postfix logs it ("Connection refused", "Connection timed
// out"), so that what administrators grep for in mailq output
// ("mailq | grep 'Connection refused' -B1") finds it here too.
func TestConnectFailureWords(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nobody listens now
	_, derr := Dial(context.Background(), addr, Options{})
	re, ok := derr.(*Error)
	if !ok {
		t.Fatalf("Dial(%s) = %v; want a remote.Error", addr, derr)
	}
	timeout := &Error{Stage: "connect", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.ErrDeadlineExceeded}}
	unreach := &Error{Stage: "connect", Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}}
	for _, tt := range []struct {
		err  *Error
		want string
	}{
		{re, "4.4.1 upstream connect failed: Connection refused"},
		{timeout, "4.4.1 upstream connect failed: Connection timed out"},
		{unreach, "4.4.1 upstream connect failed: No route to host"},
	} {
		if got := tt.err.AsReply().Account(); got != tt.want {
			t.Errorf("%v: AsReply().Account() = %q; want %q", tt.err, got, tt.want)
		}
	}
	// Other failures keep their own words.
	other := &Error{Stage: "greeting", Err: &net.OpError{Op: "read", Net: "tcp", Err: os.ErrDeadlineExceeded}}
	if got := other.AsReply().Account(); strings.Contains(got, "Connection timed out") {
		t.Errorf("a read timeout says %q; only a connect timeout is Postfix's \"Connection timed out\"", got)
	}
}
