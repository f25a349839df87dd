package milter

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/filter"
)

func TestTransaction(t *testing.T) {
	tm := &testMilter{}
	addr := startMilter(t, tm)
	m := newMilter(t, addr, Options{MacroValues: map[string]string{"j": "relay.example.org", "daemon_name": "relaykeeper-in"}})
	cp, ep := writeMessage(t, testContent, "192.0.2.7:49068")
	res := m.Run(context.Background(), cp, ep)
	if res.Outcome != filter.OK || res.Reason != "" {
		t.Fatalf("Run = %v; want ok", res)
	}
	if got := readFile(t, cp); got != testContent {
		t.Errorf("content changed by an accepting milter:\n%s", got)
	}
	s := tm.s
	s.mu.Lock()
	defer s.mu.Unlock()
	got := []string{s.host, s.family, s.addr, s.helo, s.from}
	want := []string{"[192.0.2.7]", "tcp4", "192.0.2.7", "client.example", "alice@example.org"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("connect, helo, mail (-want +got):\n%s", diff)
	}
	if s.port != 49068 {
		t.Errorf("port = %d; want 49068", s.port)
	}
	if diff := cmp.Diff([]string{"bob@example.net", "carol@example.com"}, s.rcpts); diff != "" {
		t.Errorf("rcpts (-want +got):\n%s", diff)
	}
	wantHeaders := [][2]string{
		{"Received", "from client.example by relay.example; Sun, 22 Nov 2026 03:00:00 +0000"},
		{"From", "Alice <alice@example.org>"},
		{"To", "bob@example.net"},
		{"Subject", "hello"},
		{"X-Folded", "one\n\ttwo"},
		{"Date", "Sun, 22 Nov 2026 03:00:00 +0000"},
		{"Message-ID", "<1@example.org>"},
	}
	if diff := cmp.Diff(wantHeaders, s.headers); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	if want := "Hello Bob.\r\n\r\nAlice\r\n"; s.body != want {
		t.Errorf("body = %q; want %q", s.body, want)
	}
	for k, v := range map[string]string{
		"j": "relay.example.org", "{daemon_name}": "relaykeeper-in", "{client_addr}": "192.0.2.7",
		"i": "6B0252D2F906FE64", "{mail_addr}": "alice@example.org", "{auth_authen}": "alice",
		"{rcpt_addr}": "carol@example.com",
	} {
		if s.macros[k] != v {
			t.Errorf("macro %s = %q; want %q", k, s.macros[k], v)
		}
	}
}

func TestDecisions(t *testing.T) {
	tests := []struct {
		name string
		tm   testMilter
		want filter.Result
	}{
		{"reject", testMilter{eom: func(*gomilter.Modifier) gomilter.Response { return gomilter.RespReject }},
			filter.Result{Outcome: filter.Reject, Code: 550, Enhanced: "5.7.1", Text: "Command rejected"}},
		{"reject with reply", testMilter{eom: func(*gomilter.Modifier) gomilter.Response {
			return gomilter.NewResponseStr('y', "554 5.7.0 spam detected")
		}}, filter.Result{Outcome: filter.Reject, Code: 554, Enhanced: "5.7.0", Text: "spam detected"}},
		{"multi-line reply", testMilter{eom: func(*gomilter.Modifier) gomilter.Response {
			return gomilter.NewResponseStr('y', "550-5.7.1 first\r\n550 5.7.1 second")
		}}, filter.Result{Outcome: filter.Reject, Code: 550, Enhanced: "5.7.1", Text: "first second"}},
		{"tempfail", testMilter{eom: func(*gomilter.Modifier) gomilter.Response { return gomilter.RespTempFail }},
			filter.Result{Outcome: filter.TempFail, Code: 451, Enhanced: "4.7.1", Text: "Service unavailable - try again later"}},
		{"tempfail with reply", testMilter{eom: func(*gomilter.Modifier) gomilter.Response {
			return gomilter.NewResponseStr('y', "421 4.7.0 greylisted")
		}}, filter.Result{Outcome: filter.TempFail, Code: 421, Enhanced: "4.7.0", Text: "greylisted"}},
		{"discard", testMilter{eom: func(*gomilter.Modifier) gomilter.Response { return gomilter.RespDiscard }},
			filter.Result{Outcome: filter.Abandon}},
		{"continue", testMilter{eom: func(*gomilter.Modifier) gomilter.Response { return gomilter.RespContinue }},
			filter.Result{Outcome: filter.OK}},
		{"rcpt tempfail", testMilter{rcpt: func(r string) gomilter.Response {
			if r == "carol@example.com" {
				return gomilter.NewResponseStr('y', "450 4.2.0 greylisted, come back later")
			}
			return gomilter.RespContinue
		}}, filter.Result{Outcome: filter.TempFail, Code: 450, Enhanced: "4.2.0", Text: "greylisted, come back later"}},
		{"rcpt accept", testMilter{rcpt: func(string) gomilter.Response { return gomilter.RespAccept }},
			filter.Result{Outcome: filter.OK}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startMilter(t, &tt.tm)
			cp, ep := writeMessage(t, testContent, "192.0.2.7:49068")
			res := newMilter(t, addr, Options{}).Run(context.Background(), cp, ep)
			res.Reason = ""
			if diff := cmp.Diff(tt.want, res); diff != "" {
				t.Errorf("Run (-want +got):\n%s", diff)
			}
			if got := readFile(t, cp); got != testContent {
				t.Errorf("content changed:\n%s", got)
			}
		})
	}
}

func TestChanges(t *testing.T) {
	tests := []struct {
		name string
		eom  func(m *gomilter.Modifier)
		want string
	}{
		{"add header", func(m *gomilter.Modifier) {
			m.AddHeader("X-Spam-Status", "No, score=0.1\n\ttests=NONE")
		}, strings.Replace(testContent, "\r\n\r\nHello", "\r\nX-Spam-Status: No, score=0.1\r\n\ttests=NONE\r\n\r\nHello", 1)},
		{"insert header at top", func(m *gomilter.Modifier) {
			m.InsertHeader(0, "DKIM-Signature", "v=1; d=example.org")
		}, "DKIM-Signature: v=1; d=example.org\r\n" + testContent},
		{"insert header second", func(m *gomilter.Modifier) {
			m.InsertHeader(1, "Authentication-Results", "relay; dkim=pass")
		}, strings.Replace(testContent, "\r\nFrom:", "\r\nAuthentication-Results: relay; dkim=pass\r\nFrom:", 1)},
		{"change header", func(m *gomilter.Modifier) {
			m.ChangeHeader(1, "Subject", "[SPAM] hello")
		}, strings.Replace(testContent, "Subject: hello", "Subject: [SPAM] hello", 1)},
		{"change folded header", func(m *gomilter.Modifier) {
			m.ChangeHeader(1, "x-folded", "three")
		}, strings.Replace(testContent, "X-Folded: one\r\n\ttwo", "X-Folded: three", 1)},
		{"delete header", func(m *gomilter.Modifier) {
			m.ChangeHeader(1, "Received", "")
		}, testContent[strings.Index(testContent, "From:"):]},
		{"change missing header adds it", func(m *gomilter.Modifier) {
			m.ChangeHeader(2, "Subject", "")
			m.ChangeHeader(1, "X-New", "yes")
		}, strings.Replace(testContent, "\r\n\r\nHello", "\r\nX-New: yes\r\n\r\nHello", 1)},
		{"replace body", func(m *gomilter.Modifier) {
			m.ReplaceBody([]byte("New body.\n"))
		}, testContent[:strings.Index(testContent, "Hello")] + "New body.\r\n"},
		{"headers and body", func(m *gomilter.Modifier) {
			m.AddHeader("X-A", "1")
			m.ChangeHeader(1, "To", "robert@example.net")
			m.ReplaceBody([]byte("B\r\n"))
		}, strings.Replace(testContent[:strings.Index(testContent, "\r\n\r\nHello")], "To: bob", "To: robert", 1) + "\r\nX-A: 1\r\n\r\nB\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := startMilter(t, &testMilter{eom: func(m *gomilter.Modifier) gomilter.Response {
				tt.eom(m)
				return gomilter.RespAccept
			}})
			cp, ep := writeMessage(t, testContent, "192.0.2.7:49068")
			before, _ := os.Stat(cp)
			res := newMilter(t, addr, Options{}).Run(context.Background(), cp, ep)
			if res.Outcome != filter.OK {
				t.Fatalf("Run = %v; want ok", res)
			}
			if diff := cmp.Diff(tt.want, readFile(t, cp)); diff != "" {
				t.Errorf("content (-want +got):\n%s", diff)
			}
			after, _ := os.Stat(cp)
			if after.Mode() != before.Mode() {
				t.Errorf("mode = %v; want %v", after.Mode(), before.Mode())
			}
			if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(cp), "*.tmp")); len(tmps) > 0 {
				t.Errorf("temporary files left: %v", tmps)
			}
		})
	}
}

func TestQuarantine(t *testing.T) {
	addr := startMilter(t, &testMilter{eom: func(m *gomilter.Modifier) gomilter.Response {
		m.AddHeader("X-Virus", "EICAR")
		m.Quarantine("virus found")
		return gomilter.RespAccept
	}})
	cp, ep := writeMessage(t, testContent, "192.0.2.7:49068")
	res := newMilter(t, addr, Options{}).Run(context.Background(), cp, ep)
	reason, ok := Quarantined(res)
	if !ok || reason != "virus found" {
		t.Errorf("Quarantined(%v) = %q, %v; want \"virus found\", true", res, reason, ok)
	}
	if got := readFile(t, cp); !strings.Contains(got, "X-Virus: EICAR\r\n") {
		t.Errorf("content lacks the milter's header:\n%s", got)
	}
	if _, ok := Quarantined(filter.Result{Outcome: filter.OK, Reason: "pipe: content rewritten"}); ok {
		t.Error("Quarantined(a plain OK) = true")
	}
}

func TestRecipients(t *testing.T) {
	addr := startMilter(t, &testMilter{eom: func(m *gomilter.Modifier) gomilter.Response {
		m.DeleteRecipient("carol@example.com")
		m.AddRecipient("archive@example.org")
		return gomilter.RespAccept
	}})
	cp, ep := writeMessage(t, testContent, "192.0.2.7:49068")
	res := newMilter(t, addr, Options{}).Run(context.Background(), cp, ep)
	if res.Outcome != filter.OK {
		t.Fatalf("Run = %v; want ok", res)
	}
	env := readEnvelope(t, ep)
	var got []string
	for _, r := range env.Recipients {
		got = append(got, string(r.Status)+" "+r.Addr)
	}
	want := []string{"sent dave@example.com", "pending bob@example.net", "pending archive@example.org"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("recipients (-want +got):\n%s", diff)
	}
	if env.AuthID != "alice" || env.Helo != "client.example" {
		t.Errorf("envelope lost fields: auth %q helo %q", env.AuthID, env.Helo)
	}

	// A milter that removes every recipient leaves nothing to deliver.
	addr = startMilter(t, &testMilter{eom: func(m *gomilter.Modifier) gomilter.Response {
		m.DeleteRecipient("bob@example.net")
		m.DeleteRecipient("carol@example.com")
		return gomilter.RespAccept
	}})
	cp, ep = writeMessage(t, testContent, "192.0.2.7:49068")
	if res := newMilter(t, addr, Options{}).Run(context.Background(), cp, ep); res.Outcome != filter.Abandon {
		t.Errorf("Run = %v; want abandon", res)
	}
}

// deadAddr is a loopback port nobody listens on.
func deadAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "tcp:" + addr
}

func TestMilterDown(t *testing.T) {
	addr := deadAddr(t)
	tests := []struct {
		action  string
		outcome filter.Outcome
		code    int
	}{
		{"", filter.TempFail, 451},
		{"tempfail", filter.TempFail, 451},
		{"accept", filter.OK, 0},
		{"reject", filter.Reject, 550},
		{"quarantine", filter.OK, 0},
	}
	for _, tt := range tests {
		cp, ep := writeMessage(t, testContent, "192.0.2.7:49068")
		res := newMilter(t, addr, Options{DefaultAction: tt.action, ConnectTimeout: time.Second}).Run(context.Background(), cp, ep)
		if res.Outcome != tt.outcome || res.Code != tt.code || !strings.Contains(res.Reason, "connect") {
			t.Errorf("DefaultAction %q: Run = %v; want %v %d with a reason", tt.action, res, tt.outcome, tt.code)
		}
		if _, q := Quarantined(res); q != (tt.action == "quarantine") {
			t.Errorf("DefaultAction %q: Quarantined = %v", tt.action, q)
		}
		if got := readFile(t, cp); got != testContent {
			t.Errorf("content changed:\n%s", got)
		}
	}
}

func TestTimeout(t *testing.T) {
	addr := startMilter(t, &testMilter{hang: true})
	cp, ep := writeMessage(t, testContent, "192.0.2.7:49068")
	start := time.Now()
	res := newMilter(t, addr, Options{ContentTimeout: 200 * time.Millisecond}).Run(context.Background(), cp, ep)
	if res.Outcome != filter.TempFail {
		t.Errorf("Run = %v; want tempfail", res)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run took %v; want about 200ms", d)
	}
	// With accept as the default action, a hung milter lets the message
	// through unchanged.
	res = newMilter(t, addr, Options{ContentTimeout: 200 * time.Millisecond, DefaultAction: "accept"}).Run(context.Background(), cp, ep)
	if res.Outcome != filter.OK || !strings.Contains(res.Reason, "accepted unfiltered") {
		t.Errorf("Run = %v; want ok, accepted unfiltered", res)
	}

	// A context that ends is a TempFail whatever the default action.
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	res = newMilter(t, addr, Options{DefaultAction: "accept"}).Run(ctx, cp, ep)
	if res.Outcome != filter.TempFail {
		t.Errorf("Run with a context that ends = %v; want tempfail", res)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Run took %v after the context ended", d)
	}
}

func TestUnixSocket(t *testing.T) {
	tm := &testMilter{s: &seen{}, eom: func(m *gomilter.Modifier) gomilter.Response {
		m.AddHeader("X-Seen", "yes")
		return gomilter.RespAccept
	}}
	sock := filepath.Join(t.TempDir(), "milter.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &gomilter.Server{NewMilter: func() gomilter.Milter { return tm }, Actions: gomilter.OptAddHeader}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	defer func() { srv.Close(); <-done }()

	// A message relaykeeper made itself has no client: it comes from
	// localhost.
	cp, ep := writeMessage(t, testContent, "")
	res := newMilter(t, "unix:"+sock, Options{}).Run(context.Background(), cp, ep)
	if res.Outcome != filter.OK || !strings.Contains(readFile(t, cp), "X-Seen: yes\r\n") {
		t.Errorf("Run = %v, content:\n%s", res, readFile(t, cp))
	}
	tm.s.mu.Lock()
	defer tm.s.mu.Unlock()
	if tm.s.host != "localhost" || tm.s.addr != "127.0.0.1" || tm.s.helo != "client.example" {
		t.Errorf("connect %q %q helo %q; want localhost 127.0.0.1 client.example", tm.s.host, tm.s.addr, tm.s.helo)
	}
}

func TestParseAddr(t *testing.T) {
	tests := []struct {
		in, network, address string
	}{
		{"inet:8891@127.0.0.1", "tcp", "127.0.0.1:8891"},
		{"inet:8891@localhost", "tcp", "localhost:8891"},
		{"inet6:8891@[::1]", "tcp", "[::1]:8891"},
		{"inet:127.0.0.1:8891", "tcp", "127.0.0.1:8891"},
		{"inet:[::1]:8891", "tcp", "[::1]:8891"},
		{"tcp:milter.example:11332", "tcp", "milter.example:11332"},
		{"unix:/run/opendkim/opendkim.sock", "unix", "/run/opendkim/opendkim.sock"},
		{"local:/run/opendmarc.sock", "unix", "/run/opendmarc.sock"},
		{"/var/spool/postfix/milter", "unix", "/var/spool/postfix/milter"},
		{"inet:8891", "", ""},
		{"inet:x@127.0.0.1", "", ""},
		{"inet:99999@127.0.0.1", "", ""},
		{"smtp:host:25", "", ""},
		{"", "", ""},
		{"unix:", "", ""},
	}
	for _, tt := range tests {
		network, address, err := parseAddr(tt.in)
		if network != tt.network || address != tt.address || (err != nil) != (tt.network == "") {
			t.Errorf("parseAddr(%q) = %q, %q, %v; want %q, %q", tt.in, network, address, err, tt.network, tt.address)
		}
	}
	if _, err := New("inet:1@127.0.0.1", Options{DefaultAction: "discard"}); err == nil {
		t.Error(`New with DefaultAction "discard" succeeded`)
	}
}

func TestReplyResult(t *testing.T) {
	tests := []struct {
		code int
		text string
		want filter.Result
		ok   bool
	}{
		{550, "5.7.1 go away", filter.Result{Outcome: filter.Reject, Code: 550, Enhanced: "5.7.1", Text: "go away"}, true},
		{550, "go away", filter.Result{Outcome: filter.Reject, Code: 550, Enhanced: "5.7.1", Text: "go away"}, true},
		{550, "4.7.1 wrong class", filter.Result{Outcome: filter.Reject, Code: 550, Enhanced: "5.7.1", Text: "wrong class"}, true},
		{451, "", filter.Result{Outcome: filter.TempFail, Code: 451, Enhanced: "4.7.1", Text: "Service unavailable - try again later"}, true},
		{451, "4.3.2 a\n451 4.3.2 b\x01", filter.Result{Outcome: filter.TempFail, Code: 451, Enhanced: "4.3.2", Text: "a b?"}, true},
		{250, "2.0.0 ok", filter.Result{Code: 250}, false},
	}
	for _, tt := range tests {
		got, ok := replyResult(tt.code, tt.text)
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("replyResult(%d, %q) = %v, %v; want %v, %v", tt.code, tt.text, got, ok, tt.want, tt.ok)
		}
	}
}

func TestNoHeaderSeparator(t *testing.T) {
	addr := startMilter(t, &testMilter{eom: func(m *gomilter.Modifier) gomilter.Response {
		m.AddHeader("X-A", "1")
		return gomilter.RespAccept
	}})
	for _, tt := range []struct{ in, want string }{
		{"Subject: x\r\n", "Subject: x\r\nX-A: 1\r\n"},
		{"Subject: x\r\nnot a header\r\n", "Subject: x\r\nX-A: 1\r\n\r\nnot a header\r\n"},
		{"", "X-A: 1\r\n"},
		{"Subject: x", "Subject: x\r\nX-A: 1\r\n"}, // no final line break: the field was glued on
		{"Subject: x\n\nLF only\n", "Subject: x\nX-A: 1\r\n\nLF only\n"},
	} {
		cp, ep := writeMessage(t, tt.in, "192.0.2.7:1")
		if res := newMilter(t, addr, Options{}).Run(context.Background(), cp, ep); res.Outcome != filter.OK {
			t.Errorf("Run(%q) = %v", tt.in, res)
		}
		if got := readFile(t, cp); got != tt.want {
			t.Errorf("content of %q after adding a field = %q; want %q", tt.in, got, tt.want)
		}
	}
}

// TestRevFltUnnegotiatedChange: a milter that asks at end-of-message for a
// change it did not negotiate (here smfi_chgfrom, which relaykeeper never
// offers) breaks the protocol: Postfix applies milter_default_action, and so
// does relaykeeper now. It used to drop the request silently and pass the
// message with the sender the milter meant to replace.
func TestRevFltUnnegotiatedChange(t *testing.T) {
	for _, action := range []string{"tempfail", "accept"} {
		t.Run(action, func(t *testing.T) {
			addr := startMilter(t, &testMilter{eom: func(m *gomilter.Modifier) gomilter.Response {
				m.AddHeader("X-Srs", "rewritten")
				m.ChangeFrom("<bounces+srs@example.com>")
				return gomilter.RespAccept
			}})
			cp, ep := writeMessage(t, testContent, "192.0.2.7:49068")
			envBefore := readFile(t, ep)
			res := newMilter(t, addr, Options{DefaultAction: action}).Run(context.Background(), cp, ep)
			want := filter.TempFail
			if action == "accept" {
				want = filter.OK
			}
			if res.Outcome != want || !strings.Contains(res.Reason, "change the sender") {
				t.Errorf("Run = %v (%s); want %v with the reason", res, res.Reason, want)
			}
			if got := readFile(t, cp); got != testContent {
				t.Errorf("content changed to %q; want it as it was", got)
			}
			if got := readFile(t, ep); got != envBefore {
				t.Errorf("envelope changed to %q; want it as it was", got)
			}
		})
	}
}
