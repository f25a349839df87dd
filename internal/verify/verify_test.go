package verify

import (
	"bufio"
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

var testReq = Request{
	Recipient:     "Alice@Example.com",
	Sender:        "bob@example.org",
	ClientAddr:    "192.0.2.7:40123",
	Domain:        "mx.example.com",
	AuthMechanism: "PLAIN",
	AuthID:        "bob",
}

// verifier writes a shell script and returns a Verifier that runs it.
func verifier(t *testing.T, body string, timeout time.Duration) *Verifier {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "my verifiers")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "verify.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	v, err := New(strings.ReplaceAll(p, " ", `\ `), timeout)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestArguments(t *testing.T) {
	argsFile := filepath.Join(t.TempDir(), "args")
	v := verifier(t, `printf '[%s]\n' "$#" "$@" > "`+argsFile+`"; echo; echo x; exit 1`, 10*time.Second)
	v.Verify(context.Background(), testReq)
	b, err := os.ReadFile(argsFile)
	if err != nil {
		t.Fatal(err)
	}
	want := "[6]\n[Alice@Example.com]\n[bob@example.org]\n[192.0.2.7:40123]\n[mx.example.com]\n[plain]\n[bob]\n"
	if string(b) != want {
		t.Errorf("verifier arguments = %q; want %q", b, want)
	}

	// VRFY: an empty sender is still an argument.
	req := testReq
	req.Sender, req.AuthMechanism, req.AuthID = "", "none", ""
	v.Verify(context.Background(), req)
	b, _ = os.ReadFile(argsFile)
	want = "[6]\n[Alice@Example.com]\n[]\n[192.0.2.7:40123]\n[mx.example.com]\n[none]\n[]\n"
	if string(b) != want {
		t.Errorf("VRFY verifier arguments = %q; want %q", b, want)
	}
}

func TestExitCodes(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Result
	}{
		{"local", `echo "  Alice Liddell "; echo alice; exit 0`,
			Result{Kind: Local, FullName: "Alice Liddell", Mailbox: "alice"}},
		{"local without lines", `exit 0`,
			Result{Kind: TempFail, Code: 450, EnhancedCode: TempFailEnhancedCode, Text: UnavailableText,
				Reason: "the verifier exited 0 without its second line (the mailbox)"}},
		{"remote rewritten", `echo; echo alice@example.com; exit 1`,
			Result{Kind: Remote, Address: "alice@example.com"}},
		{"remote without line 2", `exit 1`,
			Result{Kind: TempFail, Code: 450, EnhancedCode: TempFailEnhancedCode, Text: UnavailableText,
				Reason: "the verifier exited 1 without its second line (the address)"}},
		{"remote in angle brackets", `echo; echo '<alice@example.com>'; exit 1`,
			Result{Kind: Remote, Address: "alice@example.com"}},
		{"remote quoted", `echo; echo '"alice smith"@example.com'; exit 1`,
			Result{Kind: Remote, Address: "alice smith@example.com"}},
		{"remote with a space", `echo; echo 'alice smith@example.com'; exit 1`,
			Result{Kind: TempFail, Code: 450, EnhancedCode: TempFailEnhancedCode, Text: UnavailableText,
				Reason: `the verifier's address "alice smith@example.com": bad address syntax: ' ' in local part`}},
		{"remote without a domain", `echo; echo alice; exit 1`,
			Result{Kind: TempFail, Code: 450, EnhancedCode: TempFailEnhancedCode, Text: UnavailableText,
				Reason: `the verifier's address "alice": bad address syntax: no domain`}},
		{"reject", `echo "no such user"; echo "not in passwd"; exit 2`,
			Result{Kind: Reject, Code: 550, EnhancedCode: "5.1.1", Text: "no such user", Reason: "not in passwd"}},
		{"reject CRLF", `printf 'no such user\r\nwhy\r\n'; exit 2`,
			Result{Kind: Reject, Code: 550, EnhancedCode: "5.1.1", Text: "no such user", Reason: "why"}},
		{"reject default text", `exit 2`,
			Result{Kind: Reject, Code: 550, EnhancedCode: RejectEnhancedCode, Text: RejectText}},
		{"reject enhanced code", `echo "5.2.1 mailbox disabled"; exit 2`,
			Result{Kind: Reject, Code: 550, EnhancedCode: "5.2.1", Text: "mailbox disabled"}},
		{"reject wrong class", `echo "4.2.2 mailbox full"; exit 2`,
			Result{Kind: Reject, Code: 550, EnhancedCode: "5.2.2", Text: "mailbox full"}},
		{"tempfail", `echo "ldap down"; exit 3`,
			Result{Kind: TempFail, Code: 450, EnhancedCode: "4.3.0", Text: "ldap down"}},
		{"tempfail default text", `exit 3`,
			Result{Kind: TempFail, Code: 450, EnhancedCode: TempFailEnhancedCode, Text: TempFailText}},
		{"exit 4 is reject", `echo nope; exit 4`,
			Result{Kind: Reject, Code: 550, EnhancedCode: "5.1.1", Text: "nope"}},
		{"exit 99 is reject", `exit 99`,
			Result{Kind: Reject, Code: 550, EnhancedCode: RejectEnhancedCode, Text: RejectText}},
		{"drop", `exit 100`, Result{Kind: Drop}},
		{"exit 101 is reject", `echo nope; exit 101`,
			Result{Kind: Reject, Code: 550, EnhancedCode: "5.1.1", Text: "nope"}},
		{"exit 255 is reject", `exit 255`,
			Result{Kind: Reject, Code: 550, EnhancedCode: RejectEnhancedCode, Text: RejectText}},
		{"control characters", `printf 'bad\033[31m text\n'; exit 2`,
			Result{Kind: Reject, Code: 550, EnhancedCode: "5.1.1", Text: "bad?[31m text"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := verifier(t, tt.body, 10*time.Second)
			got := v.Verify(context.Background(), testReq)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Verify mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"timeout", `sleep 30 & wait`},
		{"crash", `echo "Full Name"; echo mbox; kill -SEGV $$`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v := verifier(t, tt.body, 300*time.Millisecond)
			start := time.Now()
			got := v.Verify(context.Background(), testReq)
			if time.Since(start) > 5*time.Second {
				t.Errorf("Verify took %v", time.Since(start))
			}
			if got.Kind != TempFail || got.Code != 450 || got.Text != UnavailableText || got.Reason == "" {
				t.Errorf("Verify = %+v; want TempFail 450 %q with a reason", got, UnavailableText)
			}
		})
	}

	// A missing program is refused by New; one removed since is a TempFail.
	if _, err := New("/nonexistent/verifier --flag", time.Second); err == nil || !strings.Contains(err.Error(), "/nonexistent/verifier") {
		t.Errorf("New with a missing program: %v; want an error naming it", err)
	}
	gone := filepath.Join(t.TempDir(), "verifier")
	if err := os.WriteFile(gone, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	v, err := New(gone+" --flag", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(gone)
	got := v.Verify(context.Background(), testReq)
	if got.Kind != TempFail || got.Code != 450 || !strings.Contains(got.Reason, gone) {
		t.Errorf("Verify with a missing program = %+v; want TempFail naming the program", got)
	}
}

func TestZeroResultDoesNotAccept(t *testing.T) {
	if k := (Result{}).Kind; k != TempFail {
		t.Errorf("zero Result Kind = %v; want TempFail", k)
	}
}

func TestNewErrors(t *testing.T) {
	for _, spec := range []string{"", "   ", "net:nocolon", "account:", "account:lowercase"} {
		if _, err := New(spec, 0); err == nil {
			t.Errorf("New(%q) succeeded; want an error", spec)
		}
	}
}

func TestBadCharacters(t *testing.T) {
	v := verifier(t, `exit 0`, time.Second)
	req := testReq
	req.Recipient = "a@b\r\nRSET"
	if got := v.Verify(context.Background(), req); got.Kind != Reject {
		t.Errorf("Verify(%q) = %+v; want Reject", req.Recipient, got)
	}
}

// netVerifier is a network verifier daemon on the loopback interface.
type netVerifier struct {
	ln      net.Listener
	answer  func(fields []string) string
	mu      sync.Mutex
	conns   int      // guarded by mu: connections accepted
	lines   []string // guarded by mu: requests received
	closeAt int      // guarded by mu: close each connection after this many requests (0: never)
}

func startNetVerifier(t *testing.T, answer func(fields []string) string) *netVerifier {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &netVerifier{ln: ln, answer: answer}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.mu.Lock()
			s.conns++
			s.mu.Unlock()
			wg.Go(func() { s.serve(c) })
		}
	})
	return s
}

func (s *netVerifier) serve(c net.Conn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	for n := 1; ; n++ {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		s.mu.Lock()
		s.lines = append(s.lines, line)
		closeAt := s.closeAt
		s.mu.Unlock()
		reply := s.answer(strings.Split(line, "|"))
		if reply == "" {
			continue // never answer: the client times out
		}
		// A second line comes late, after the client has its answer.
		first, late, two := strings.Cut(reply, "\n")
		c.Write([]byte(first + "\n"))
		if two {
			time.Sleep(50 * time.Millisecond)
			c.Write([]byte(late + "\n"))
		}
		if closeAt > 0 && n >= closeAt {
			return
		}
	}
}

func (s *netVerifier) stats() (conns int, lines []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.conns, append([]string(nil), s.lines...)
}

func TestNetVerifier(t *testing.T) {
	srv := startNetVerifier(t, func(f []string) string {
		switch strings.ToLower(f[0]) {
		case "local@example.com":
			return "0|alice|Alice Liddell"
		case "remote@example.com":
			return "1|Remote@Example.NET"
		case "bad@example.com":
			return "2|5.1.1 no such user|not in table"
		case "later@example.com":
			return "3|try later"
		case "pipe@example.com":
			return "0 | mbox | Full | Name "
		case "drop@example.com":
			return "100"
		case "garbage@example.com":
			return "yes please"
		case "silent@example.com":
			return ""
		}
		return "2"
	})
	v, err := New("net:"+srv.ln.Addr().String(), 500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()

	tests := []struct {
		rcpt string
		want Result
	}{
		{"local@example.com", Result{Kind: Local, FullName: "Alice Liddell", Mailbox: "alice"}},
		{"remote@example.com", Result{Kind: Remote, Address: "Remote@Example.NET"}},
		{"bad@example.com", Result{Kind: Reject, Code: 550, EnhancedCode: "5.1.1", Text: "no such user", Reason: "not in table"}},
		{"later@example.com", Result{Kind: TempFail, Code: 450, EnhancedCode: "4.3.0", Text: "try later"}},
		{"pipe@example.com", Result{Kind: Local, FullName: "Full | Name", Mailbox: "mbox"}},
		{"drop@example.com", Result{Kind: Drop}},
		{"other@example.com", Result{Kind: Reject, Code: 550, EnhancedCode: RejectEnhancedCode, Text: RejectText}},
	}
	for _, tt := range tests {
		req := testReq
		req.Recipient = tt.rcpt
		got := v.Verify(context.Background(), req)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Verify(%q) mismatch (-want +got):\n%s", tt.rcpt, diff)
		}
	}
	conns, lines := srv.stats()
	if conns != 1 {
		t.Errorf("%d requests used %d connections; want 1 persistent connection", len(tests), conns)
	}
	if want := "local@example.com|bob@example.org|192.0.2.7:40123|mx.example.com|plain|bob"; lines[0] != want {
		t.Errorf("request line = %q; want %q", lines[0], want)
	}

	// Failures: nonsense and silence are temporary failures, never accepts.
	for _, rcpt := range []string{"garbage@example.com", "silent@example.com"} {
		req := testReq
		req.Recipient = rcpt
		got := v.Verify(context.Background(), req)
		if got.Kind != TempFail || got.Code != 450 || got.Text != UnavailableText {
			t.Errorf("Verify(%q) = %+v; want TempFail %q", rcpt, got, UnavailableText)
		}
	}
	// The connection was dropped after each failure; the next request works.
	req := testReq
	req.Recipient = "local@example.com"
	if got := v.Verify(context.Background(), req); got.Kind != Local {
		t.Errorf("Verify after failures = %+v; want Local", got)
	}
}

func TestNetVerifierReconnect(t *testing.T) {
	srv := startNetVerifier(t, func(f []string) string { return "1|" + f[0] })
	srv.mu.Lock()
	srv.closeAt = 1 // the daemon closes every connection after one reply
	srv.mu.Unlock()
	v, err := New("net:"+srv.ln.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	for i := range 3 {
		got := v.Verify(context.Background(), testReq)
		if got.Kind != Remote || got.Address != testReq.Recipient {
			t.Errorf("Verify #%d on a closed connection = %+v; want Remote (reconnected)", i, got)
		}
		time.Sleep(20 * time.Millisecond) // let the close arrive
	}
	if conns, _ := srv.stats(); conns != 3 {
		t.Errorf("connections = %d; want 3", conns)
	}
}

func TestNetVerifierConcurrent(t *testing.T) {
	srv := startNetVerifier(t, func(f []string) string { return "1|" + f[0] })
	v, err := New("net:"+srv.ln.Addr().String(), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			req := testReq
			req.Recipient = strings.Repeat("x", i+1) + "@example.com"
			if got := v.Verify(context.Background(), req); got.Address != req.Recipient {
				t.Errorf("Verify(%q) = %+v; want its own answer", req.Recipient, got)
			}
		})
	}
	wg.Wait()
}

func TestNetVerifierDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	v, err := New("net:"+addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Verify(context.Background(), testReq); got.Kind != TempFail || got.Code != 450 {
		t.Errorf("Verify with the daemon down = %+v; want TempFail 450", got)
	}
}

func TestParseNetReply(t *testing.T) {
	tests := []struct {
		in    string
		exit  int
		lines []string
	}{
		{"0|mailbox|Full Name\n", 0, []string{"Full Name", "mailbox"}},
		{"0|mailbox\r\n", 0, []string{"", "mailbox"}},
		{"1|a@b", 1, []string{"", "a@b"}},
		{"2|error text", 2, []string{"error text", ""}},
		{"3|text|reason|more", 3, []string{"text", "reason|more"}},
		{" 100 ", 100, []string{"", ""}},
		{"007|x", 7, []string{"x", ""}},
	}
	for _, tt := range tests {
		exit, lines, err := parseNetReply(tt.in)
		if err != nil || exit != tt.exit || !cmp.Equal(lines, tt.lines) {
			t.Errorf("parseNetReply(%q) = %d, %q, %v; want %d, %q", tt.in, exit, lines, err, tt.exit, tt.lines)
		}
	}
	for _, in := range []string{"", "\n", "|x", "ok", "1000|x", "-1|x", "0\n0|x"} {
		if exit, lines, err := parseNetReply(in); err == nil {
			t.Errorf("parseNetReply(%q) = %d, %q; want an error", in, exit, lines)
		}
	}
}

// TestLongText: a verifier that writes a huge first line does not make the
// server send a reply line past SMTP's 512 octets (RFC 5321 4.5.3.1.5); the
// text is cut, without splitting a UTF-8 character.
func TestLongText(t *testing.T) {
	v := verifier(t, `printf 'é%.0s' $(seq 1 5000); echo; echo reason; exit 2`, 10*time.Second)
	got := v.Verify(context.Background(), testReq)
	if got.Kind != Reject || len(got.Text) > maxText || !strings.HasPrefix(got.Text, "éé") || !utf8.ValidString(got.Text) {
		t.Errorf("Verify = %v, text of %d bytes; want a reject with at most %d bytes of valid text", got.Kind, len(got.Text), maxText)
	}
}

// TestRevFltNetVerifierStaleLine: a line the daemon wrote after its answer
// is not taken as the answer to the next recipient (it was: the connection
// went back to the idle ones and the next RCPT got the stale line).
func TestRevFltNetVerifierStaleLine(t *testing.T) {
	srv := startNetVerifier(t, func(f []string) string {
		if f[0] == "late@example.com" {
			return "1|late@example.com\n2|stale answer"
		}
		return "1|" + f[0]
	})
	v, err := New("net:"+srv.ln.Addr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	req := testReq
	req.Recipient = "late@example.com"
	if got := v.Verify(context.Background(), req); got.Kind != Remote {
		t.Fatalf("Verify(late) = %+v; want remote", got)
	}
	time.Sleep(150 * time.Millisecond) // the stale line arrives
	req.Recipient = "next@example.com"
	if got := v.Verify(context.Background(), req); got.Kind != Remote || got.Address != "next@example.com" {
		t.Errorf("Verify(next) = %+v; want remote next@example.com, the daemon's answer to it", got)
	}
}
