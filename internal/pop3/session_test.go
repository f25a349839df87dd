package pop3

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

const (
	msg1 = "Received: from x\r\nSubject: one\r\n\r\nbody one\r\n.leading dot\r\nlast\r\n"
	msg2 = "Subject: two\r\n\r\nbody two\r\n"
)

var users = testAuth{"alice": "secret", "bob": "hunter2 with spaces"}

func TestSessionCommands(t *testing.T) {
	dir := t.TempDir()
	id1, id2 := addMessage(t, dir, msg1), addMessage(t, dir, msg2)
	_, addr := startServer(t, Options{SpoolDir: dir, Auth: users, MaxErrors: 100, MaxAuthFailures: 10})
	c := dial(t, addr)

	// AUTHORIZATION state.
	caps := c.multi("CAPA")
	if want := []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER", "SASL PLAIN", "IMPLEMENTATION relaykeeper"}; !cmp.Equal(caps, want) {
		t.Errorf("CAPA before login diff (-got +want):\n%s", cmp.Diff(caps, want))
	}
	for _, tt := range []struct{ cmd, want string }{
		{"STAT", replyBadState},
		{"PASS secret", "-ERR USER first"},
		{"STLS", "-ERR STLS not available"},
		{"APOP alice 0123", "-ERR APOP not available"},
		{"XYZZY", "-ERR unknown command"},
		{"ST@T", "-ERR bad command syntax"},
	} {
		if got := c.cmd(tt.cmd); got != tt.want {
			t.Errorf("%s: %q; want %q", tt.cmd, got, tt.want)
		}
	}
	c.ok("USER alice")
	if got := c.cmd("PASS wrong"); got != replyAuthFailed {
		t.Errorf("PASS wrong: %q; want %q", got, replyAuthFailed)
	}
	c.ok("user alice")
	if got := c.ok("pass secret"); got != fmt.Sprintf("+OK maildrop locked and ready: 2 messages (%d octets)", len(msg1)+len(msg2)) {
		t.Errorf("PASS: %q", got)
	}

	// TRANSACTION state.
	if got := c.multi("CAPA"); !cmp.Equal(got, []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "IMPLEMENTATION relaykeeper"}) {
		t.Errorf("CAPA after login: %q", got)
	}
	if got, want := c.ok("STAT"), fmt.Sprintf("+OK 2 %d", len(msg1)+len(msg2)); got != want {
		t.Errorf("STAT: %q; want %q", got, want)
	}
	if got, want := c.multi("LIST"), []string{fmt.Sprintf("1 %d", len(msg1)), fmt.Sprintf("2 %d", len(msg2))}; !cmp.Equal(got, want) {
		t.Errorf("LIST: %q; want %q", got, want)
	}
	if got, want := c.ok("LIST 2"), fmt.Sprintf("+OK 2 %d", len(msg2)); got != want {
		t.Errorf("LIST 2: %q; want %q", got, want)
	}
	if got, want := c.multi("UIDL"), []string{"1 " + id1, "2 " + id2}; !cmp.Equal(got, want) {
		t.Errorf("UIDL: %q; want %q", got, want)
	}
	if got, want := c.ok("UIDL 1"), "+OK 1 "+id1; got != want {
		t.Errorf("UIDL 1: %q; want %q", got, want)
	}
	if got, want := c.multi("TOP 1 1"), []string{"Received: from x", "Subject: one", "", "body one"}; !cmp.Equal(got, want) {
		t.Errorf("TOP 1 1: %q; want %q", got, want)
	}
	if got, want := c.multi("RETR 1"), strings.Split(strings.TrimSuffix(msg1, "\r\n"), "\r\n"); !cmp.Equal(got, want) {
		t.Errorf("RETR 1: %q; want %q", got, want)
	}
	// RFC 1939: any non-negative number of lines; more than there are is
	// the whole message.
	if got, want := c.multi("TOP 1 99999999999"), strings.Split(strings.TrimSuffix(msg1, "\r\n"), "\r\n"); !cmp.Equal(got, want) {
		t.Errorf("TOP 1 99999999999: %q; want %q", got, want)
	}
	for _, tt := range []struct{ cmd, want string }{
		{"LIST 3", replyNoMessage},
		{"LIST 0", replyNoMessage},
		{"RETR x", replyNoMessage},
		{"TOP 1", "-ERR usage: TOP message lines"},
		{"TOP 1 -1", "-ERR usage: TOP message lines"},
		{"USER bob", replyBadState},
		{"STLS", replyBadState},
	} {
		if got := c.cmd(tt.cmd); got != tt.want {
			t.Errorf("%s: %q; want %q", tt.cmd, got, tt.want)
		}
	}
	c.ok("DELE 1")
	if got := c.cmd("DELE 1"); got != "-ERR message 1 already deleted" {
		t.Errorf("DELE 1 again: %q", got)
	}
	if got := c.cmd("RETR 1"); got != "-ERR message 1 already deleted" {
		t.Errorf("RETR of a deleted message: %q", got)
	}
	if got, want := c.ok("STAT"), fmt.Sprintf("+OK 1 %d", len(msg2)); got != want {
		t.Errorf("STAT after DELE: %q; want %q", got, want)
	}
	if got, want := c.multi("LIST"), []string{fmt.Sprintf("2 %d", len(msg2))}; !cmp.Equal(got, want) {
		t.Errorf("LIST after DELE: %q; want %q", got, want)
	}
	// RSET undoes DELE.
	c.ok("RSET")
	if got, want := c.multi("UIDL"), []string{"1 " + id1, "2 " + id2}; !cmp.Equal(got, want) {
		t.Errorf("UIDL after RSET: %q; want %q", got, want)
	}
	c.ok("NOOP")
	c.ok("DELE 2")
	if !exists(filepath.Join(dir, id2+".envelope")) {
		t.Fatal("DELE removed the message before QUIT")
	}
	if got := c.ok("QUIT"); got != "+OK bye (1 messages removed, 1 left)" {
		t.Errorf("QUIT: %q", got)
	}
	if exists(filepath.Join(dir, id2+".envelope")) || exists(filepath.Join(dir, id2+".content")) {
		t.Error("QUIT left the deleted message's files")
	}
	if !exists(filepath.Join(dir, id1+".envelope")) || !exists(filepath.Join(dir, id1+".content")) {
		t.Error("QUIT removed a message not deleted")
	}
}

// TestSessionOnlyReady checks that messages being received, delivered,
// held or failed are not served.
func TestSessionOnlyReady(t *testing.T) {
	dir := t.TempDir()
	id := addMessage(t, dir, msg1)
	for _, suffix := range []string{".envelope.new", ".envelope.busy", ".envelope.bad", ".envelope.held"} {
		other := addMessage(t, dir, msg2)
		os.Rename(filepath.Join(dir, other+".envelope"), filepath.Join(dir, other+suffix))
	}
	orphan := addMessage(t, dir, msg2) // an envelope without content
	os.Remove(filepath.Join(dir, orphan+".content"))
	_, addr := startServer(t, Options{SpoolDir: dir, Auth: users})
	c := dial(t, addr)
	c.login("alice", "secret")
	if got := c.multi("UIDL"); !cmp.Equal(got, []string{"1 " + id}) {
		t.Errorf("UIDL: %q; want only %s", got, id)
	}
}

func TestPassWithSpaces(t *testing.T) {
	_, addr := startServer(t, Options{SpoolDir: t.TempDir(), Auth: users})
	c := dial(t, addr)
	c.login("bob", "hunter2 with spaces")
}

func TestAPOP(t *testing.T) {
	dir := t.TempDir()
	addMessage(t, dir, msg1)
	_, addr := startServer(t, Options{SpoolDir: dir, Auth: users, APOP: users, Domain: "pop.example"})
	digest := func(ts, secret string) string {
		sum := md5.Sum([]byte(ts + secret))
		return hex.EncodeToString(sum[:])
	}
	c := dial(t, addr)
	ts := regexp.MustCompile(`<\d+\.\d+@pop\.example>$`).FindString(c.greeting)
	if ts == "" {
		t.Fatalf("greeting %q has no APOP timestamp", c.greeting)
	}
	for _, bad := range []string{"APOP alice " + digest(ts, "wrong"), "APOP nobody " + digest(ts, "secret"), "APOP alice " + digest("<1.2@other>", "secret")} {
		if got := c.cmd(bad); got != replyAuthFailed {
			t.Errorf("%s: %q; want %q", bad, got, replyAuthFailed)
		}
	}
	c.Close()

	c = dial(t, addr)
	ts2 := regexp.MustCompile(`<[^>]*>$`).FindString(c.greeting)
	if ts2 == ts {
		t.Errorf("two greetings with the same timestamp %s", ts)
	}
	if got := c.ok("APOP alice " + strings.ToUpper(digest(ts2, "secret"))); !strings.Contains(got, "1 messages") {
		t.Errorf("APOP: %q", got)
	}
}

func TestAuthPlain(t *testing.T) {
	_, addr := startServer(t, Options{SpoolDir: t.TempDir(), Auth: users, MaxAuthFailures: 10})
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	c := dial(t, addr)
	if got := c.multi("AUTH"); !cmp.Equal(got, []string{"PLAIN"}) {
		t.Errorf("AUTH: %q", got)
	}
	for _, tt := range []struct{ cmd, want string }{
		{"AUTH CRAM-MD5", "-ERR unsupported authentication mechanism"},
		{"AUTH PLAIN " + b64("\x00alice\x00wrong"), replyAuthFailed},
		{"AUTH PLAIN " + b64("bob\x00alice\x00secret"), replyAuthFailed}, // another authzid
		{"AUTH PLAIN " + b64("alice\x00secret"), replyAuthFailed},
		{"AUTH PLAIN not!base64", replyAuthFailed},
		{"AUTH PLAIN =", replyAuthFailed},
	} {
		if got := c.cmd(tt.cmd); got != tt.want {
			t.Errorf("%s: %q; want %q", tt.cmd, got, tt.want)
		}
	}
	// A continuation, cancelled.
	if got := c.cmd("AUTH PLAIN"); got != "+ " {
		t.Fatalf("AUTH PLAIN: %q; want \"+ \"", got)
	}
	if got := c.cmd("*"); got != "-ERR authentication cancelled" {
		t.Errorf("*: %q", got)
	}
	// A continuation, completed.
	if got := c.cmd("auth plain"); got != "+ " {
		t.Fatalf("AUTH PLAIN: %q; want \"+ \"", got)
	}
	c.ok(b64("alice\x00alice\x00secret"))
	c.ok("QUIT")

	c = dial(t, addr)
	c.ok("AUTH PLAIN " + b64("\x00bob\x00hunter2 with spaces"))
}

func TestAuthFailuresEndSession(t *testing.T) {
	_, addr := startServer(t, Options{SpoolDir: t.TempDir(), Auth: users, FailDelay: 50 * time.Millisecond})
	c := dial(t, addr)
	start := time.Now()
	for range 3 {
		c.ok("USER alice")
		if got := c.cmd("PASS wrong"); got != replyAuthFailed {
			t.Fatalf("PASS wrong: %q", got)
		}
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Errorf("three failed logins took %v; want at least 3 x FailDelay", d)
	}
	if !c.closed() {
		t.Error("session still open after 3 failed logins")
	}
}

func TestErrorLimit(t *testing.T) {
	_, addr := startServer(t, Options{SpoolDir: t.TempDir(), Auth: users, MaxErrors: 3})
	c := dial(t, addr)
	c.cmd("BAD")
	c.cmd("BAD")
	if got := c.cmd("BAD"); got != "-ERR unknown command; too many errors, closing" {
		t.Errorf("third error: %q", got)
	}
	if !c.closed() {
		t.Error("session still open after the error limit")
	}
}

func TestLineTooLong(t *testing.T) {
	_, addr := startServer(t, Options{SpoolDir: t.TempDir(), Auth: users, MaxLineLength: 300})
	c := dial(t, addr)
	if got := c.cmd("USER " + strings.Repeat("a", 400)); got != "-ERR line too long" {
		t.Errorf("long line: %q", got)
	}
	if !c.closed() {
		t.Error("session still open after a line too long")
	}
}

func TestMailboxLocked(t *testing.T) {
	dir := t.TempDir()
	addMessage(t, dir, msg1)
	_, addr := startServer(t, Options{SpoolDir: dir, Auth: users})
	c1 := dial(t, addr)
	c1.login("alice", "secret")
	c2 := dial(t, addr)
	c2.ok("USER bob") // without ByName, every user has the one spool
	if got := c2.cmd("PASS hunter2 with spaces"); got != replyInUse {
		t.Errorf("second login: %q; want %q", got, replyInUse)
	}
	c1.ok("QUIT")
	c2.ok("USER alice")
	c2.ok("PASS secret")
}

func TestNoDelete(t *testing.T) {
	dir := t.TempDir()
	id := addMessage(t, dir, msg1)
	_, addr := startServer(t, Options{SpoolDir: dir, Auth: users, NoDelete: true})
	c := dial(t, addr)
	c.login("alice", "secret")
	c.ok("DELE 1")
	if got := c.ok("STAT"); got != "+OK 0 0" {
		t.Errorf("STAT after DELE: %q", got)
	}
	c.ok("QUIT")
	if !exists(filepath.Join(dir, id+".envelope")) || !exists(filepath.Join(dir, id+".content")) {
		t.Error("NoDelete deleted the message")
	}
}

// TestDeliveringMessageSurvives: a message a forwarder claims after the
// login holds the spool's lock, so DELE and QUIT leave it alone.
func TestDeliveringMessageSurvives(t *testing.T) {
	dir := t.TempDir()
	id := addMessage(t, dir, msg1)
	sp, err := spool.Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, addr := startServer(t, Options{SpoolDir: dir, Auth: users})
	c := dial(t, addr)
	c.login("alice", "secret")
	claim, err := sp.Claim(id)
	if err != nil {
		t.Fatal(err)
	}
	c.ok("DELE 1")
	if got := c.cmd("QUIT"); got != "-ERR [SYS/TEMP] 1 deleted messages not removed: in use; try again later" {
		t.Errorf("QUIT: %q", got)
	}
	if !exists(filepath.Join(dir, id+".envelope.busy")) || !exists(filepath.Join(dir, id+".content")) {
		t.Error("QUIT removed a message being delivered")
	}
	claim.Unlock()

	// An administrator's lock on a Ready message protects it the same way.
	c = dial(t, addr)
	c.login("alice", "secret")
	lock, err := sp.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	c.ok("DELE 1")
	c.cmd("QUIT")
	if !exists(filepath.Join(dir, id+".envelope")) {
		t.Error("QUIT removed a locked message")
	}
	lock.Unlock()
}

func TestByName(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "spool")
	outside := filepath.Join(base, "outside")
	for _, d := range []string{dir, outside, filepath.Join(dir, "bob")} {
		os.MkdirAll(d, 0o750)
	}
	addMessage(t, dir, msg1) // the main spool's: nobody's with ByName
	bobID := addMessage(t, filepath.Join(dir, "bob"), msg2)
	addMessage(t, outside, msg1)
	os.Symlink(outside, filepath.Join(dir, "evil"))
	os.Symlink("..", filepath.Join(dir, "up"))

	bad := []string{"../outside", "a/b", ".hidden", "..", ".", "a..b", "evil", "up", "/etc"}
	all := testAuth{"alice": "pw", "bob": "pw"}
	for _, u := range bad {
		all[u] = "pw"
	}
	_, addr := startServer(t, Options{SpoolDir: dir, Auth: all, ByName: true, MaxErrors: 100})

	c := dial(t, addr)
	c.login("alice", "pw")
	if got := c.ok("STAT"); got != "+OK 0 0" {
		t.Errorf("alice's STAT: %q", got)
	}
	if fi, err := os.Stat(filepath.Join(dir, "alice")); err != nil || !fi.IsDir() {
		t.Errorf("alice's mailbox was not created: %v", err)
	}
	c.ok("QUIT")

	c = dial(t, addr)
	c.login("bob", "pw")
	if got := c.multi("UIDL"); !cmp.Equal(got, []string{"1 " + bobID}) {
		t.Errorf("bob's UIDL: %q", got)
	}
	c.ok("QUIT")

	for _, u := range bad {
		c = dial(t, addr)
		c.ok("USER " + u)
		if got := c.cmd("PASS pw"); got != "-ERR [SYS/PERM] no mailbox for this user name" {
			t.Errorf("login as %q: %q", u, got)
		}
		c.Close()
	}
	des, _ := os.ReadDir(base)
	if len(des) != 2 {
		t.Errorf("%s has %d entries; want spool and outside only", base, len(des))
	}
	if exists(filepath.Join(outside, lockName)) {
		t.Error("a session touched a directory outside the spool")
	}
}

func TestRequireTLS(t *testing.T) {
	dir := t.TempDir()
	addMessage(t, dir, msg1)
	cfg, _ := testCert(t)
	_, addr := startServer(t, Options{SpoolDir: dir, Auth: users, TLSConfig: cfg, RequireTLS: true})
	c := dial(t, addr)
	if got := c.multi("CAPA"); !cmp.Equal(got, []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "STLS", "IMPLEMENTATION relaykeeper"}) {
		t.Errorf("CAPA before TLS: %q", got)
	}
	for _, cmd := range []string{"USER alice", "PASS secret", "AUTH PLAIN AGFsaWNlAHNlY3JldA==", "APOP alice 00"} {
		if got := c.cmd(cmd); got != replyTLSFirst {
			t.Errorf("%s before TLS: %q", cmd, got)
		}
	}
	// Plaintext pipelined after STLS must not reach the TLS session.
	fmt.Fprintf(c.nc, "STLS\r\nUSER injected\r\n")
	if got, err := c.ReadLine(); err != nil || !strings.HasPrefix(got, "+OK") {
		t.Fatalf("STLS: %q, %v", got, err)
	}
	tc := tls.Client(c.nc, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	tcl := &client{t: t, Conn: textproto.NewConn(tc), nc: tc}
	if got := tcl.cmd("PASS secret"); got != "-ERR USER first" {
		t.Errorf("PASS after STLS with injected USER: %q", got)
	}
	if got := tcl.multi("CAPA"); !cmp.Equal(got, []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER", "SASL PLAIN", "IMPLEMENTATION relaykeeper"}) {
		t.Errorf("CAPA after TLS: %q", got)
	}
	if got := tcl.cmd("STLS"); got != "-ERR TLS already active" {
		t.Errorf("second STLS: %q", got)
	}
	tcl.login("alice", "secret")
	tcl.ok("QUIT")
}

func TestIdleTimeout(t *testing.T) {
	_, addr := startServer(t, Options{SpoolDir: t.TempDir(), Auth: users, IdleTimeout: 200 * time.Millisecond})
	c := dial(t, addr)
	if got, err := c.ReadLine(); got != "-ERR autologout: idle for too long" {
		t.Errorf("after the idle timeout: %q, %v", got, err)
	}
}

func TestShutdown(t *testing.T) {
	dir := t.TempDir()
	id := addMessage(t, dir, msg1)
	srv := New(Options{SpoolDir: dir, Auth: users})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(l) }()
	c := dial(t, l.Addr().String())
	c.login("alice", "secret")
	c.ok("DELE 1")

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Errorf("Shutdown: %v", err)
	}
	if err := <-served; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if got, _ := c.ReadLine(); got != "-ERR [SYS/TEMP] server shutting down" {
		t.Errorf("idle session at shutdown heard %q", got)
	}
	if !exists(filepath.Join(dir, id+".envelope")) {
		t.Error("a session ended by Shutdown deleted a message")
	}
	if _, err := net.Dial("tcp", l.Addr().String()); err == nil {
		t.Error("listener still accepting after Shutdown")
	}
}
