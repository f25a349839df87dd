package policy

import (
	"bufio"
	"context"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// fakePolicy is a policy server on 127.0.0.1 that answers each request
// with answer(request attributes) and records the requests and how many
// connections it was asked over.
type fakePolicy struct {
	ln     net.Listener
	answer func(map[string]string) string
	mu     sync.Mutex
	reqs   []map[string]string
	conns  int
}

func startFakePolicy(t *testing.T, network, addr string, answer func(map[string]string) string) *fakePolicy {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePolicy{ln: ln, answer: answer}
	harness.Serve(t, ln, f.serve)
	return f
}

func (f *fakePolicy) serve(c net.Conn) {
	f.mu.Lock()
	f.conns++
	f.mu.Unlock()
	r := bufio.NewReader(c)
	attrs := map[string]string{}
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		line = strings.TrimSuffix(line, "\n")
		if line != "" {
			k, v, _ := strings.Cut(line, "=")
			attrs[k] = v
			continue
		}
		f.mu.Lock()
		f.reqs = append(f.reqs, attrs)
		f.mu.Unlock()
		resp := f.answer(attrs)
		if resp == "close" {
			return
		}
		if _, err := c.Write([]byte(resp)); err != nil {
			return
		}
		attrs = map[string]string{}
	}
}

func (f *fakePolicy) counts() (reqs, conns int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.reqs), f.conns
}

func policyEngine(t *testing.T, spec string) *Engine {
	t.Helper()
	return engine(t, Options{
		MyNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Recipient:  []string{"check_policy_service " + spec},
	})
}

var policyReq = &Request{
	ClientIP: netip.MustParseAddr("192.0.2.7"), ClientAddr: "192.0.2.7:40000", Helo: "client.example",
	Sender: "alice@example.org", Recipient: "bob@example.net", Instance: "1a.2",
	Size: 1234, ServerAddr: "127.0.0.1:25", AuthID: "alice", AuthMech: "PLAIN",
}

// TestPolicyServiceRequest: the request carries Postfix's attributes, and
// the action is read as an access table result worded for its list.
func TestPolicyServiceRequest(t *testing.T) {
	f := startFakePolicy(t, "tcp", "127.0.0.1:0", func(a map[string]string) string {
		if a["recipient"] == "bob@example.net" {
			return "action=REJECT not for you\nother=ignored\n\n"
		}
		return "action=DUNNO\n\n"
	})
	e := policyEngine(t, "inet:"+f.ln.Addr().String())
	d := e.Check(context.Background(), StageRcpt, policyReq)
	if want := "554 5.7.1 <bob@example.net>: Recipient address rejected: not for you"; d.Verdict != Reject || d.Reply() != want {
		t.Errorf("Check = %v %q; want Reject %q", d.Verdict, d.Reply(), want)
	}
	f.mu.Lock()
	got := f.reqs[0]
	f.mu.Unlock()
	for k, v := range map[string]string{
		"request": "smtpd_access_policy", "protocol_state": "RCPT", "protocol_name": "ESMTP",
		"helo_name": "client.example", "sender": "alice@example.org", "recipient": "bob@example.net",
		"recipient_count": "0", "client_address": "192.0.2.7", "client_name": "unknown",
		"instance": "1a.2", "sasl_method": "PLAIN", "sasl_username": "alice", "size": "1234",
		"client_port": "40000", "server_address": "127.0.0.1", "server_port": "25", "queue_id": "",
	} {
		if got[k] != v {
			t.Errorf("attribute %s = %q; want %q", k, got[k], v)
		}
	}
	r2 := *policyReq
	r2.Recipient = "carol@example.net"
	if d := e.Check(context.Background(), StageRcpt, &r2); d.Verdict != Permit {
		t.Errorf("DUNNO from the service, then permit by default: %v %q", d.Verdict, d.Reply())
	}
	if reqs, conns := f.counts(); reqs != 2 || conns != 1 {
		t.Errorf("%d requests over %d connections; want 2 over 1 (the connection is kept)", reqs, conns)
	}
}

// TestPolicyServiceFailures: a kept connection the server closed is
// replaced once; a server that is down, answers without an action, or
// answers something that is no action gets Postfix's default action.
func TestPolicyServiceFailures(t *testing.T) {
	n := 0
	var mu sync.Mutex
	f := startFakePolicy(t, "tcp", "127.0.0.1:0", func(a map[string]string) string {
		mu.Lock()
		defer mu.Unlock()
		n++
		switch a["recipient"] {
		case "noaction@example.net":
			return "other=1\n\n"
		case "garbage@example.net":
			return "action=FROBNICATE\n\n"
		case "long@example.net":
			return "action=" + strings.Repeat("x", 10000) + "\n\n"
		}
		if n == 2 {
			return "close" // the server dropped the kept connection
		}
		return "action=OK\n\n"
	})
	e := policyEngine(t, "inet:"+f.ln.Addr().String())
	for range 2 {
		if d := e.Check(context.Background(), StageRcpt, policyReq); d.Verdict != Permit {
			t.Errorf("Check = %v %q; want Permit (a closed kept connection is replaced)", d.Verdict, d.Reply())
		}
	}
	const def = "451 4.3.5 <%s>: Recipient address rejected: Server configuration problem"
	for _, rcpt := range []string{"noaction@example.net", "long@example.net"} {
		r := *policyReq
		r.Recipient = rcpt
		if d := e.Check(context.Background(), StageRcpt, &r); d.Verdict != Defer || d.Reply() != strings.Replace(def, "%s", rcpt, 1) {
			t.Errorf("%s: Check = %v %q; want the default action", rcpt, d.Verdict, d.Reply())
		}
	}
	r := *policyReq
	r.Recipient = "garbage@example.net"
	if d := e.Check(context.Background(), StageRcpt, &r); d.Verdict != Defer || d.Code != 451 {
		t.Errorf("an answer that is no action: Check = %v %q; want 451", d.Verdict, d.Reply())
	}
	f.ln.Close()
	down := policyEngine(t, "inet:"+f.ln.Addr().String())
	if d := down.Check(context.Background(), StageRcpt, policyReq); d.Reply() != strings.Replace(def, "%s", "bob@example.net", 1) {
		t.Errorf("server down: Check = %v %q; want the default action", d.Verdict, d.Reply())
	}
}

// TestPolicyServiceUnixAndSpecs: unix:/path works; specs Postfix would
// read differently are refused with a reason.
func TestPolicyServiceUnixAndSpecs(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "policy")
	startFakePolicy(t, "unix", sock, func(map[string]string) string { return "action=DEFER_IF_PERMIT Greylisted\n\n" })
	e := policyEngine(t, "unix:"+sock)
	if d := e.Check(context.Background(), StageRcpt, policyReq); d.Reply() != "450 4.7.1 <bob@example.net>: Recipient address rejected: Greylisted" {
		t.Errorf("Check = %v %q; want the DEFER_IF_PERMIT deferral", d.Verdict, d.Reply())
	}
	for _, spec := range []string{"unix:private/policy", "inet:10023", "tcp:127.0.0.1:1", "inet:", "127.0.0.1:10023"} {
		if _, err := New(Options{Recipient: []string{"check_policy_service " + spec}}); err == nil {
			t.Errorf("check_policy_service %s: accepted", spec)
		}
	}
}

// TestPolicyServiceNoInjection: a value with a line break cannot add an
// attribute of its own.
func TestPolicyServiceNoInjection(t *testing.T) {
	f := startFakePolicy(t, "tcp", "127.0.0.1:0", func(map[string]string) string { return "action=DUNNO\n\n" })
	e := policyEngine(t, "inet:"+f.ln.Addr().String())
	r := *policyReq
	r.AuthID = "alice\nrecipient=victim@example.com\r\n\nsender=x"
	e.Check(context.Background(), StageRcpt, &r)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.reqs) != 1 || f.reqs[0]["recipient"] != "bob@example.net" {
		t.Errorf("requests %v; a login name added an attribute or a request", f.reqs)
	}
}

// TestPolicyServiceBraces: Postfix 3.0's "{ server, name=value, ... }"
// form. default_action=DUNNO makes a server that is down a no-op (fail
// open), as policyd-rate-limit's README asks; policy_context is sent;
// request_limit closes a connection after that many requests; a value
// with spaces is written in braces of its own; bad settings are refused.
func TestPolicyServiceBraces(t *testing.T) {
	f := startFakePolicy(t, "tcp", "127.0.0.1:0", func(map[string]string) string { return "action=REJECT nope\n\n" })
	addr := f.ln.Addr().String()
	e := policyEngine(t, "{ inet:"+addr+", policy_context=submission, request_limit=1, timeout=5s }")
	for range 2 {
		if d := e.Check(context.Background(), StageRcpt, policyReq); d.Verdict != Reject {
			t.Errorf("Check = %v %q; want the server's REJECT", d.Verdict, d.Reply())
		}
	}
	f.mu.Lock()
	ctxAttr := f.reqs[0]["policy_context"]
	f.mu.Unlock()
	if ctxAttr != "submission" {
		t.Errorf("policy_context = %q; want submission", ctxAttr)
	}
	if reqs, conns := f.counts(); reqs != 2 || conns != 2 {
		t.Errorf("%d requests over %d connections; want 2 over 2 (request_limit=1)", reqs, conns)
	}

	f.ln.Close()
	open := policyEngine(t, "{inet:"+addr+",default_action=DUNNO}")
	if d := open.Check(context.Background(), StageRcpt, policyReq); d.Verdict != Permit {
		t.Errorf("server down, default_action=DUNNO: Check = %v %q; want the list to go on (permit)", d.Verdict, d.Reply())
	}
	own := policyEngine(t, "{ inet:"+addr+", { default_action = 450 4.7.1 Policy server down }, try_limit=1 }")
	if d := own.Check(context.Background(), StageRcpt, policyReq); d.Reply() != "450 4.7.1 <bob@example.net>: Recipient address rejected: Policy server down" {
		t.Errorf("server down, own default_action: Check = %v %q", d.Verdict, d.Reply())
	}

	for _, spec := range []string{
		"{ inet:" + addr,                                // no closing brace
		"{ inet:" + addr + ", timeout=soon }",           // not a time
		"{ inet:" + addr + ", try_limit=0 }",            // at least one
		"{ inet:" + addr + ", default_action=FROB }",    // not an action
		"{ inet:" + addr + ", colour=blue }",            // unknown setting
		"{ inet:" + addr + ", default_action }",         // not name=value
		"{ }",                                           // no server
		"{ unix:private/policy, default_action=DUNNO }", // relative socket
	} {
		if _, err := New(Options{Recipient: []string{"check_policy_service " + spec}}); err == nil {
			t.Errorf("check_policy_service %s: accepted", spec)
		}
	}
}
