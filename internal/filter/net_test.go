package filter

import (
	"bufio"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// netServer is a network filter daemon for tests. It reads the content
// file named by each request line and answers after its first line:
//
//	REPLY <text>    answer <text> and a newline
//	HANG            answer nothing
//	CLOSE           close the connection without answering
//	PARTIAL         write half a line and close
//	ONESHOT         answer ok and close the connection
//	LATE            answer ok, then a second line 50 ms later
type netServer struct {
	l       net.Listener
	accepts atomic.Int32
	mu      sync.Mutex
	reqs    []string // guarded by mu
}

func startNetServer(t *testing.T, network, address string) *netServer {
	t.Helper()
	l, err := net.Listen(network, address)
	if err != nil {
		t.Fatal(err)
	}
	s := &netServer{l: l}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.accepts.Add(1)
			go s.serve(c)
		}
	}()
	return s
}

func (s *netServer) serve(c net.Conn) {
	defer c.Close()
	br := bufio.NewReader(c)
	for {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		line, err := br.ReadString('\n')
		if err != nil {
			return
		}
		s.mu.Lock()
		s.reqs = append(s.reqs, line)
		s.mu.Unlock()
		b, _ := os.ReadFile(strings.TrimSuffix(line, "\n"))
		cmd, _, _ := strings.Cut(string(b), "\r\n")
		switch {
		case strings.HasPrefix(cmd, "REPLY "):
			io.WriteString(c, strings.TrimPrefix(cmd, "REPLY ")+"\r\n")
		case cmd == "HANG":
			time.Sleep(3 * time.Second)
			return
		case cmd == "CLOSE":
			return
		case cmd == "PARTIAL":
			io.WriteString(c, "550 half a")
			return
		case cmd == "LATE":
			io.WriteString(c, "ok\n")
			time.Sleep(50 * time.Millisecond)
			io.WriteString(c, "550 5.7.1 stale answer\n")
		case cmd == "ONESHOT":
			io.WriteString(c, "ok\n")
			return
		default:
			io.WriteString(c, "error: no command\n")
		}
	}
}

func TestNetFilter(t *testing.T) {
	srv := startNetServer(t, "tcp", "127.0.0.1:0")
	f := mustParse(t, "net:"+srv.l.Addr().String(), Server, 500*time.Millisecond)
	defer f.(*netFilter).Close()
	tests := []struct {
		content string
		want    Result
	}{
		{"REPLY ok", Result{}},
		{"REPLY ok thanks", Result{}},
		{"REPLY 550 5.7.1 go away\tscored 99", Result{Outcome: Reject, Code: 550, Enhanced: "5.7.1", Text: "go away", Reason: "scored 99"}},
		{"REPLY no thanks", Result{Outcome: Reject, Code: 550, Enhanced: "5.7.1", Text: "no thanks", Reason: "no thanks"}},
		{"REPLY 554", Result{Outcome: Reject, Code: 554, Enhanced: "5.7.1", Text: "rejected", Reason: "rejected"}},
		{"REPLY 451 4.7.1 later\tbusy", Result{Outcome: TempFail, Code: 451, Enhanced: "4.7.1", Text: "later", Reason: "busy"}},
		{"REPLY 100 dropped\tduplicate", Result{Outcome: Abandon, Reason: "duplicate"}},
		{"REPLY 100 dropped", Result{Outcome: Abandon, Reason: "dropped"}},
		{"REPLY 100", Result{Outcome: Abandon}},
		{"REPLY ", Result{Outcome: TempFail, Code: 451, Enhanced: "4.3.0", Text: "filter failed, try again later", Reason: "net filter: empty reply"}},
	}
	for _, tt := range tests {
		c, e := message(t, tt.content+"\r\n")
		got := f.Run(context.Background(), c, e)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("reply %q (-want +got):\n%s", tt.content, diff)
		}
	}
	if n := srv.accepts.Load(); n != 1 {
		t.Errorf("%d connections for %d messages; want 1, kept open", n, len(tests))
	}
	srv.mu.Lock()
	req := srv.reqs[0]
	srv.mu.Unlock()
	if !strings.HasPrefix(req, "/") || !strings.HasSuffix(req, ".content\n") {
		t.Errorf("request = %q; want the content file's absolute path and a newline", req)
	}

	// Failures give TempFail, and the next message gets a new connection.
	for _, content := range []string{"HANG", "CLOSE", "PARTIAL"} {
		c, e := message(t, content+"\r\n")
		start := time.Now()
		r := f.Run(context.Background(), c, e)
		if r.Outcome != TempFail || r.Code != 451 {
			t.Errorf("daemon %s: Run = %v; want tempfail 451", content, r)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("daemon %s: Run took %v; want the 500ms timeout", content, d)
		}
		c, e = message(t, "REPLY ok\r\n")
		if r := f.Run(context.Background(), c, e); r.Outcome != OK {
			t.Errorf("after %s: Run = %v; want ok", content, r)
		}
	}
}

// TestNetFilterReconnects checks that a connection the daemon closed while
// idle is replaced without a failure.
func TestNetFilterReconnects(t *testing.T) {
	srv := startNetServer(t, "tcp", "127.0.0.1:0")
	f := mustParse(t, "net:"+srv.l.Addr().String(), Client, 2*time.Second)
	for i := range 3 {
		c, e := message(t, "ONESHOT\r\n")
		if r := f.Run(context.Background(), c, e); r.Outcome != OK {
			t.Fatalf("message %d: Run = %v; want ok", i, r)
		}
		time.Sleep(50 * time.Millisecond) // let the close arrive
	}
	if n := srv.accepts.Load(); n != 3 {
		t.Errorf("%d connections; want 3", n)
	}
}

func TestNetFilterConcurrent(t *testing.T) {
	srv := startNetServer(t, "tcp", "127.0.0.1:0")
	f := mustParse(t, "net:"+srv.l.Addr().String(), Server, 5*time.Second)
	var wg sync.WaitGroup
	for i := range 16 {
		content := "REPLY ok\r\n"
		if i%2 == 1 {
			content = "REPLY 550 no\r\n"
		}
		c, e := message(t, content)
		wg.Go(func() {
			for range 5 {
				r := f.Run(context.Background(), c, e)
				if (i%2 == 0 && r.Outcome != OK) || (i%2 == 1 && r.Outcome != Reject) {
					t.Errorf("Run(%q) = %v", content, r)
				}
			}
		})
	}
	wg.Wait()
	if err := Chain(f).(interface{ Close() error }).Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if n := len(f.(*netFilter).idle); n != 0 {
		t.Errorf("%d idle connections after Close", n)
	}
}

func TestNetFilterUnixAndRefused(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "filter.sock")
	startNetServer(t, "unix", sock)
	c, e := message(t, "REPLY 552 5.3.4 too big\r\n")
	r := mustParse(t, "net:"+sock, Server, 2*time.Second).Run(context.Background(), c, e)
	if r.Outcome != Reject || r.Code != 552 || r.Enhanced != "5.3.4" {
		t.Errorf("net: over a unix socket = %v; want reject 552 5.3.4", r)
	}

	l, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := l.Addr().String()
	l.Close()
	if r := mustParse(t, "net:"+dead, Server, 2*time.Second).Run(context.Background(), c, e); r.Outcome != TempFail {
		t.Errorf("net: with nobody listening = %v; want tempfail", r)
	}
}

// TestRevFltNetFilterStaleLine: a daemon that wrote more than one line for
// a message, the extra one after its answer, leaves the connection out of
// step; the next message must not take that line as its answer (it used
// to: the connection went back to the idle ones, and the next message on
// it was refused with the stale line, and so on, each one the answer to
// the message before).
func TestRevFltNetFilterStaleLine(t *testing.T) {
	srv := startNetServer(t, "tcp", "127.0.0.1:0")
	f := mustParse(t, "net:"+srv.l.Addr().String(), Server, 2*time.Second)
	defer f.(*netFilter).Close()
	c, e := message(t, "LATE\r\n")
	if r := f.Run(context.Background(), c, e); r.Outcome != OK {
		t.Fatalf("first message: Run = %v; want ok", r)
	}
	time.Sleep(150 * time.Millisecond) // the stale line arrives
	c, e = message(t, "REPLY ok\r\n")
	if r := f.Run(context.Background(), c, e); r.Outcome != OK {
		t.Errorf("next message: Run = %v (%s); want ok, the daemon's answer to it", r, r.Reason)
	}
}
