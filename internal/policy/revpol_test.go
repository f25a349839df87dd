package policy

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestRevPolWarnIfRejectNested: Postfix's warn_if_reject in front of a
// restriction class (or an access table whose result is a restriction
// list) holds for every restriction the class runs: its refusals are
// logged as warnings and the class goes on (generic_checks keeps
// state->warn_if_reject while it recurses). A DEFER_IF_PERMIT behind
// warn_if_reject is a warning too (DEFER_IF_PERMIT2 calls
// smtpd_check_reject when warn_if_reject is set).
func TestRevPolWarnIfRejectNested(t *testing.T) {
	tables := map[string]mapTable{
		"protected": {"all@example.com": "insiders_only", "open@example.com": "permit_mynetworks, reject"},
		"insiders":  {"example.com": "OK"},
		"grey":      {"grey@example.com": "DEFER_IF_PERMIT Greylisted"},
	}
	e := engine(t, Options{
		MyNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Relay:      []string{"permit_mynetworks", "permit_auth_destination", "reject"},
		Sender:     []string{"warn_if_reject", "check_sender_access hash:grey"},
		Recipient: []string{"warn_if_reject", "check_recipient_access hash:protected",
			"warn_if_reject", "insiders_only"},
		RelayDomains: []string{"example.com"},
		RestrictionClasses: map[string][]string{
			"insiders_only": {"check_sender_access hash:insiders", "reject"},
		},
		Tables: namedTables(tables),
	})
	for _, tc := range []struct{ ip, sender, rcpt string }{
		{"203.0.113.9", "spammer@example.net", "all@example.com"},
		{"203.0.113.9", "spammer@example.net", "open@example.com"},
		{"127.0.0.1", "grey@example.com", "x@example.com"},
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr(tc.ip), Sender: tc.sender, Recipient: tc.rcpt})
		if d.Verdict != Permit || len(d.Warnings) == 0 {
			t.Errorf("%s from %s to %s behind warn_if_reject: %v %q, warnings %q; want permitted with a warning",
				tc.ip, tc.sender, tc.rcpt, d.Verdict, d.Reply(), d.Warnings)
		}
	}
	// Without warn_if_reject the same class refuses.
	e = engine(t, Options{
		MyNetworks:         []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Recipient:          []string{"check_recipient_access hash:protected"},
		RestrictionClasses: map[string][]string{"insiders_only": {"check_sender_access hash:insiders", "reject"}},
		Tables:             namedTables(tables),
	})
	d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("127.0.0.1"), Sender: "s@example.net", Recipient: "all@example.com"})
	if d.Verdict != Reject {
		t.Errorf("class without warn_if_reject: %v %q; want a refusal", d.Verdict, d.Reply())
	}
}

// TestRevPolDeferIfPermitFirstReason: Postfix keeps the first reason for
// a DEFER_IF_PERMIT ("to minimize confusion", smtpd_check.c defer_if).
func TestRevPolDeferIfPermitFirstReason(t *testing.T) {
	e := engine(t, Options{
		Client: []string{"check_client_access cidr:/x"},
		Sender: []string{"check_sender_access hash:/y"},
		Tables: oneTable{mapTable{
			"192.0.2.1": "DEFER_IF_PERMIT first reason", "example.org": "DEFER_IF_PERMIT second reason",
		}},
		MyNetworks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
	})
	d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("192.0.2.1"), Sender: "s@example.org", Recipient: "r@example.net"})
	if d.Verdict != Defer || !strings.Contains(d.Reply(), "first reason") {
		t.Errorf("two DEFER_IF_PERMIT results: %v %q; want the first one's reply", d.Verdict, d.Reply())
	}
}

// closingPolicy is a policy server whose connections can all be dropped
// at once, as a restarted postgrey drops them.
type closingPolicy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
	extra string // written after each answer, in the same write
}

func startClosingPolicy(t *testing.T) *closingPolicy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &closingPolicy{ln: ln}
	t.Cleanup(func() { ln.Close(); p.dropAll() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c)
			p.mu.Unlock()
			go func() {
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if line == "\n" {
						p.mu.Lock()
						extra := p.extra
						p.mu.Unlock()
						c.Write([]byte("action=DUNNO\n\n" + extra))
					}
				}
			}()
		}
	}()
	return p
}

func (p *closingPolicy) dropAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestRevPolPolicyPoolAfterRestart: with several connections kept (as many
// as concurrent sessions used), a policy server that restarts closes them
// all; the next request must still be answered (Postfix retries on a new
// connection), not get 451 because the retry took another dead kept one.
func TestRevPolPolicyPoolAfterRestart(t *testing.T) {
	p := startClosingPolicy(t)
	svc, err := parsePolicyService("inet:" + p.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var held []*policyConn
	for range 4 {
		pc, err := svc.conn(ctx, true)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := pc.ask(ctx, "request=smtpd_access_policy\n\n"); err != nil {
			t.Fatal(err)
		}
		held = append(held, pc)
	}
	for _, pc := range held {
		svc.put(pc)
	}
	p.dropAll()
	time.Sleep(50 * time.Millisecond)
	for i := range 4 {
		if action, err := svc.ask(ctx, policyRequest(StageRcpt, policyReq)); err != nil || action != "DUNNO" {
			t.Errorf("request %d after the server dropped its connections: %q, %v; want DUNNO", i, action, err)
		}
	}
}

// TestRevPolPolicyExtraAnswer: a server that sends more than one answer
// (a second, stale "action=" block behind the first) must not have that
// block read as the answer to the next request on the kept connection.
func TestRevPolPolicyExtraAnswer(t *testing.T) {
	p := startClosingPolicy(t)
	p.extra = "action=REJECT stale answer\n\n"
	e := policyEngine(t, "inet:"+p.ln.Addr().String())
	for i := range 3 {
		if d := e.Check(context.Background(), StageRcpt, policyReq); d.Verdict != Permit {
			t.Errorf("request %d: %v %q; want Permit (the server said DUNNO to each)", i, d.Verdict, d.Reply())
		}
	}
}

// TestRevPolClassNamesDifferInCase: class names are matched regardless of
// case, so two classes whose names differ only in case made the one that
// runs depend on map order (a different list from one start to the next);
// they are refused at start.
func TestRevPolClassNamesDifferInCase(t *testing.T) {
	_, err := New(Options{RestrictionClasses: map[string][]string{
		"insiders_only": {"reject"}, "InSiders_only": {"permit"},
	}})
	if err == nil || !strings.Contains(err.Error(), "insiders_only") {
		t.Errorf("classes insiders_only and InSiders_only: New error %v; want a refusal naming them", err)
	}
}

// TestRevPolPolicyRecipientCount: Postfix sends recipient_count=0 at MAIL
// and RCPT (SMTPD_POLICY_README: "non-zero only in the DATA and
// END-OF-MESSAGE state"; smtpd_check.c sends state->rcpt_count only
// there). A policy server's "recipient_count > N" rule, written for the
// DATA stage, must not start refusing single recipients at RCPT.
func TestRevPolPolicyRecipientCount(t *testing.T) {
	for _, stage := range []Stage{StageMail, StageRcpt} {
		for _, a := range policyRequest(stage, policyReq) {
			if a.name == "recipient_count" && a.value != "0" {
				t.Errorf("stage %d: recipient_count=%s; want 0, as Postfix sends before DATA", stage, a.value)
			}
		}
	}
}

// TestRevPolPostfixTLSNames: the TLS attributes of a policy request are in
// Postfix's (OpenSSL's) words, as policy servers written for Postfix match
// them ("encryption_protocol=TLSv1.2"); Go's "TLS 1.2" and IANA suite
// names matched none of their rules. Expected names from `openssl ciphers
// -stdname`.
func TestRevPolPostfixTLSNames(t *testing.T) {
	for _, tc := range []struct {
		version, suite uint16
		proto, cipher  string
		bits           int
	}{
		{tls.VersionTLS13, tls.TLS_AES_128_GCM_SHA256, "TLSv1.3", "TLS_AES_128_GCM_SHA256", 128},
		{tls.VersionTLS13, tls.TLS_AES_256_GCM_SHA384, "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256},
		{tls.VersionTLS13, tls.TLS_CHACHA20_POLY1305_SHA256, "TLSv1.3", "TLS_CHACHA20_POLY1305_SHA256", 256},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, "TLSv1.2", "ECDHE-RSA-AES256-GCM-SHA384", 256},
		{tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, "TLSv1.2", "ECDHE-ECDSA-AES128-GCM-SHA256", 128},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, "TLSv1.2", "ECDHE-RSA-CHACHA20-POLY1305", 256},
		{tls.VersionTLS12, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, "TLSv1.2", "ECDHE-RSA-AES128-SHA256", 128},
		{tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, "TLSv1.2", "ECDHE-ECDSA-AES256-SHA", 256},
		{tls.VersionTLS12, tls.TLS_RSA_WITH_AES_128_CBC_SHA, "TLSv1.2", "AES128-SHA", 128},
		{tls.VersionTLS12, tls.TLS_RSA_WITH_AES_256_GCM_SHA384, "TLSv1.2", "AES256-GCM-SHA384", 256},
		{tls.VersionTLS12, tls.TLS_RSA_WITH_AES_128_CBC_SHA256, "TLSv1.2", "AES128-SHA256", 128},
		{tls.VersionTLS10, tls.TLS_RSA_WITH_3DES_EDE_CBC_SHA, "TLSv1", "DES-CBC3-SHA", 112},
		{tls.VersionTLS11, tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, "TLSv1.1", "ECDHE-RSA-DES-CBC3-SHA", 112},
	} {
		p, c, b := PostfixTLS(tls.ConnectionState{Version: tc.version, CipherSuite: tc.suite})
		if p != tc.proto || c != tc.cipher || b != tc.bits {
			t.Errorf("PostfixTLS(%x, %s) = %q %q %d; want %q %q %d", tc.version, tls.CipherSuiteName(tc.suite), p, c, b, tc.proto, tc.cipher, tc.bits)
		}
	}
	// The request: keysize with TLS, 0 without (Postfix's IF_ENCRYPTED).
	r := *policyReq
	r.TLSProtocol, r.TLSCipher, r.TLSKeySize = "TLSv1.3", "TLS_AES_256_GCM_SHA384", 256
	for _, tc := range []struct {
		req  *Request
		want string
	}{{&r, "256"}, {policyReq, "0"}} {
		for _, a := range policyRequest(StageRcpt, tc.req) {
			if a.name == "encryption_keysize" && a.value != tc.want {
				t.Errorf("encryption_keysize=%q; want %q", a.value, tc.want)
			}
		}
	}
}

// noDomains answers every domain "does not exist".
type noDomains struct{}

func (noDomains) MailDomain(context.Context, string) error { return errors.New("NXDOMAIN") }

// TestRevPolUnknownDomainPostmaster: RCPT TO:<Postmaster> (postmaster at
// the relay's own domain, which must be accepted from anyone, RFC 5321
// 4.5.1) is not refused by reject_unknown_recipient_domain when the relay's
// own name is not in DNS; Postfix skips its own (local, RESOLVE_CLASS_FINAL)
// domains, $myhostname among them.
func TestRevPolUnknownDomainPostmaster(t *testing.T) {
	e := engine(t, Options{
		Postmaster:  "postmaster@relay.lan",
		MailDomains: noDomains{},
		Sender:      []string{"reject_unknown_sender_domain"},
		Relay:       []string{"dunno"},
		Recipient:   []string{"reject_unknown_recipient_domain", "permit_mynetworks", "reject_unauth_destination"},
	})
	for _, tc := range []struct {
		sender, rcpt string
		want         Verdict
	}{
		{"", "postmaster@relay.lan", Permit},
		{"", "Postmaster@RELAY.lan", Permit},
		{"", "someone@elsewhere.example", Defer},
		{"postmaster@relay.lan", "someone@elsewhere.example", Defer},
		{"someone@relay.lan", "postmaster@relay.lan", Permit},
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: outside, Sender: tc.sender, Recipient: tc.rcpt})
		if d.Verdict != tc.want {
			t.Errorf("MAIL FROM:<%s> RCPT TO:<%s> from outside: %v %q; want %v", tc.sender, tc.rcpt, d.Verdict, d.Reply(), tc.want)
		}
	}
}

// TestRevPolDeferIfRejectStage: Postfix's DEFER_IF_REJECT lasts for the
// stage it is raised in (SMTPD_CHECK_RESET clears defer_if_reject at the
// start of the client, helo, sender and recipient checks; relay and
// recipient restrictions are one stage), while DEFER_IF_PERMIT carries
// on to the recipient (defer_if_permit_client and friends).
func TestRevPolDeferIfRejectStage(t *testing.T) {
	e := engine(t, Options{
		MyNetworks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		Client:     []string{"check_client_access cidr:/x"},
		Sender:     []string{"check_sender_access hash:/y"},
		Relay:      []string{"permit_mynetworks", "reject_unauth_destination"},
		Recipient:  []string{"check_recipient_access hash:/y"},
		Tables: oneTable{mapTable{
			"192.0.2.2":       "DEFER_IF_REJECT 4.7.0 client said try later",
			"sender.example":  "DEFER_IF_REJECT 4.7.0 sender said try later",
			"refused.example": "REJECT no",
		}},
	})
	for _, tc := range []struct {
		ip, sender, rcpt string
		want             Verdict
		reply            string
	}{
		// Raised in an earlier stage: the recipient's REJECT stands.
		{"192.0.2.2", "s@example.org", "a@refused.example", Reject, "554 5.7.1 <a@refused.example>: Recipient address rejected: no"},
		{"192.0.2.9", "s@sender.example", "a@refused.example", Reject, "554 5.7.1 <a@refused.example>: Recipient address rejected: no"},
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr(tc.ip), Sender: tc.sender, Recipient: tc.rcpt})
		if d.Verdict != tc.want || d.Reply() != tc.reply {
			t.Errorf("client %s, MAIL %s, RCPT %s: %v %q; want %v %q", tc.ip, tc.sender, tc.rcpt, d.Verdict, d.Reply(), tc.want, tc.reply)
		}
	}
	// Relay and recipient restrictions are one stage: raised in the relay
	// list, it turns the recipient list's REJECT into a deferral.
	e = engine(t, Options{
		MyNetworks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		Relay:      []string{"check_sender_access hash:/z", "permit_mynetworks"},
		Recipient:  []string{"check_recipient_access hash:/y"},
		Tables:     oneTable{mapTable{"sender.example": "DEFER_IF_REJECT 4.7.0 try later", "refused.example": "REJECT no"}},
	})
	d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("192.0.2.9"), Sender: "s@sender.example", Recipient: "a@refused.example"})
	if want := "450 4.7.0 <s@sender.example>: Sender address rejected: try later"; d.Reply() != want {
		t.Errorf("DEFER_IF_REJECT in the relay list, REJECT in the recipient list: %q; want %q", d.Reply(), want)
	}
}

// TestRevPolDiscardEndsChecks: after a DISCARD, Postfix applies no
// further restriction to the recipient (a private Postfix 3.7 with a
// client or sender DISCARD answers 250 to a recipient its
// recipient_restrictions REJECT): the message is thrown away anyway. A
// pending DEFER_IF_PERMIT still defers.
func TestRevPolDiscardEndsChecks(t *testing.T) {
	e := engine(t, Options{
		MyNetworks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		Client:     []string{"check_client_access cidr:/x"},
		Sender:     []string{"check_sender_access hash:/y"},
		Relay:      []string{"reject_unauth_destination"},
		Recipient:  []string{"check_recipient_access hash:/z"},
		Tables: oneTable{mapTable{
			"198.51.100.2": "DISCARD", "198.51.100.4": "DEFER_IF_PERMIT grey",
			"discs.example": "DISCARD", "refused.example": "REJECT no",
		}},
	})
	for _, tc := range []struct {
		ip, sender string
		want       Verdict
	}{
		{"198.51.100.2", "s@example.org", Discard},
		{"198.51.100.9", "s@discs.example", Discard},
		{"198.51.100.4", "s@discs.example", Defer},
		{"198.51.100.9", "s@example.org", Reject},
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr(tc.ip), Sender: tc.sender, Recipient: "a@refused.example"})
		if d.Verdict != tc.want {
			t.Errorf("client %s, MAIL %s, RCPT a@refused.example: %v %q; want %v", tc.ip, tc.sender, d.Verdict, d.Reply(), tc.want)
		}
	}
}

// TestRevPolDeferIfBothEndList: once both a DEFER_IF_PERMIT and a
// DEFER_IF_REJECT are pending, Postfix's generic_checks ends the list: the
// REJECT after them never runs, and the reply is the DEFER_IF_PERMIT's (a
// private Postfix 3.7 answers "450 4.7.1 <unknown[127.0.0.5]>: Client host
// rejected: client first" here).
func TestRevPolDeferIfBothEndList(t *testing.T) {
	e := engine(t, Options{
		MyNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Client:     []string{"check_client_access cidr:/c"},
		Relay:      []string{"permit"},
		Recipient:  []string{"check_recipient_access hash:/r2", "check_recipient_access hash:/r3", "permit"},
		Tables: namedTables{
			"/c":  {"127.0.0.5": "DEFER_IF_PERMIT client first"},
			"/r2": {"a@ex.example": "DEFER_IF_REJECT rcpt-dir"},
			"/r3": {"a@ex.example": "REJECT rcpt-rej"},
		},
	})
	d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("127.0.0.5"), Sender: "s@example.org", Recipient: "a@ex.example"})
	if want := "450 4.7.1 <unknown[127.0.0.5]>: Client host rejected: client first"; d.Reply() != want {
		t.Errorf("Check = %q; want Postfix's %q", d.Reply(), want)
	}
}

// TestRevPolPolicyControlChars: a policy server's action with control
// characters inside (a bare CR, NUL) must not reach the SMTP reply or a
// PREPENDed header field as they are: a bare CR in a reply line or a
// header field is a line break to some peers (header injection, reply
// desync). Postfix's smtpd makes reply texts printable (printable(),
// a space for each such character).
func TestRevPolPolicyControlChars(t *testing.T) {
	f := startFakePolicy(t, "tcp", "127.0.0.1:0", func(a map[string]string) string {
		if a["recipient"] == "prepend@example.net" {
			return "action=PREPEND X-A: b\rX-Evil: c\n\n"
		}
		return "action=REJECT foo\rbar\x01baz\x00q\n\n"
	})
	e := policyEngine(t, "inet:"+f.ln.Addr().String())
	d := e.Check(context.Background(), StageRcpt, policyReq)
	if want := "554 5.7.1 <bob@example.net>: Recipient address rejected: foo bar baz q"; d.Reply() != want {
		t.Errorf("reply %q; want %q", d.Reply(), want)
	}
	r := *policyReq
	r.Recipient = "prepend@example.net"
	d = e.Check(context.Background(), StageRcpt, &r)
	for _, h := range d.Prepend {
		if strings.ContainsAny(h, "\r\n\x00") {
			t.Errorf("PREPEND header %q holds a control character", h)
		}
	}
}
