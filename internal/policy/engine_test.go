package policy

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// mapTable is an access map keyed by exact address or client IP string.
type mapTable map[string]string

func (m mapTable) LookupAddressExt(a, _ string) (string, bool) {
	if v, ok := m[a]; ok {
		return v, true
	}
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		v, ok := m[a[i+1:]]
		return v, ok
	}
	return "", false
}

func (m mapTable) LookupClient(ip netip.Addr, host string) (string, bool) {
	if v, ok := m[host]; ok && host != "" {
		return v, true
	}
	v, ok := m[ip.String()]
	return v, ok
}

// oneTable opens the same access map for every spec.
type oneTable struct{ m AccessMap }

func (o oneTable) Open(string) (AccessMap, error) { return o.m, nil }

// oneRBL makes the same blocklist for every zone.
type oneRBL struct{ bl Blocklist }

func (o oneRBL) Open(string) (Blocklist, error) { return o.bl, nil }

var (
	_ Tables     = SetTables{}
	_ Tables     = oneTable{}
	_ Blocklists = oneRBL{}
)

type fakeRBL struct{ listed map[netip.Addr]string }

func (f fakeRBL) Listed(_ context.Context, ip netip.Addr) (bool, string, error) {
	t, ok := f.listed[ip]
	return ok, t, nil
}

func engine(t *testing.T, o Options) *Engine {
	t.Helper()
	if o.MyNetworks == nil {
		o.MyNetworks = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("10.0.0.0/8")}
	}
	if o.Relay == nil {
		o.Relay = []string{"permit_mynetworks", "permit_sasl_authenticated", "reject_unauth_destination"}
	}
	e, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var outside = netip.MustParseAddr("203.0.113.9")

// TestOpenRelayProbes sends every classic open-relay probe from a client
// outside mynetworks that has not logged in. None may pass.
func TestOpenRelayProbes(t *testing.T) {
	e := engine(t, Options{RelayDomains: []string{"relay.example"}})
	for _, rcpt := range []string{
		"victim@elsewhere.example",
		"victim%elsewhere.example@relay.example",
		"victim%elsewhere.example@[203.0.113.1]",
		`"victim@elsewhere.example"@relay.example`,
		`"victim%elsewhere.example"@relay.example`,
		"elsewhere.example!victim@relay.example",
		"@relay.example:victim@elsewhere.example",
		"@relay.example,@mx.relay.example:victim@elsewhere.example",
		"victim@[203.0.113.50]",
		"victim@[IPv6:2001:db8::1]",
		"victim@relay.example.elsewhere.example",
		"victim@elsewhererelay.example",
		"victim@relay.example@elsewhere.example",
		"victim@elsewhere.example.",
		"VICTIM@ELSEWHERE.EXAMPLE",
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: outside, Sender: "a@b.example", Recipient: rcpt})
		if d.Verdict != Reject || d.Code != 554 {
			t.Errorf("probe %q: %v %s; want 554 relay access denied", rcpt, d.Verdict, d.Reply())
		}
	}
	// What it must still take: its own domains, and anything from trusted
	// or authenticated clients.
	for _, tc := range []struct {
		req  Request
		want Verdict
	}{
		{Request{ClientIP: outside, Recipient: "user@relay.example"}, Permit},
		{Request{ClientIP: outside, Recipient: "user@sub.relay.example"}, Permit},
		{Request{ClientIP: netip.MustParseAddr("10.1.1.1"), Recipient: "x@elsewhere.example"}, Permit},
		{Request{ClientIP: outside, AuthID: "alice", Recipient: "x@elsewhere.example"}, Permit},
	} {
		if d := e.Check(context.Background(), StageRcpt, &tc.req); d.Verdict != tc.want {
			t.Errorf("Check(%+v) = %v %s; want %v", tc.req, d.Verdict, d.Reply(), tc.want)
		}
	}
}

func TestAccessActions(t *testing.T) {
	senders := mapTable{
		"example.com":      "REJECT",
		"spam@example.org": "REJECT go away",
		"later.example":    "DEFER",
		"held.example":     "HOLD",
		"gone.example":     "DISCARD",
		"trusted.example":  "OK",
		"broken.example":   "FROBNICATE",
		"nothing.example":  "DUNNO",
		"<>":               "REJECT no bounces here",
	}
	e := engine(t, Options{
		Sender: []string{"check_sender_access", "hash:/etc/postfix/sender_access"},
		Tables: oneTable{senders},
	})
	for _, tc := range []struct {
		sender string
		want   Verdict
		reply  string
	}{
		{"spammer@example.com", Reject, "554 5.7.1 <spammer@example.com>: Sender address rejected: Access denied"},
		{"spam@example.org", Reject, "554 5.7.1 <spam@example.org>: Sender address rejected: go away"},
		{"x@later.example", Defer, ""},
		{"x@held.example", Hold, ""},
		{"x@gone.example", Discard, ""},
		{"x@trusted.example", Permit, ""},
		{"x@broken.example", Defer, "451 4.3.5 Server configuration error"},
		{"x@nothing.example", Permit, ""},
		{"", Reject, "554 5.7.1 <>: Sender address rejected: no bounces here"},
		{"x@unlisted.example", Permit, ""},
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("127.0.0.1"), Sender: tc.sender, Recipient: "r@elsewhere.example"})
		if d.Verdict != tc.want || (tc.reply != "" && d.Reply() != tc.reply) {
			t.Errorf("sender %q: %v %q; want %v %q", tc.sender, d.Verdict, d.Reply(), tc.want, tc.reply)
		}
	}
}

func TestRBLAndWarn(t *testing.T) {
	bl := fakeRBL{listed: map[netip.Addr]string{outside: "Service unavailable; client [203.0.113.9] blocked using bl.example"}}
	e := engine(t, Options{
		Client:       []string{"reject_rbl_client bl.example"},
		RelayDomains: []string{"relay.example"},
		Blocklists:   oneRBL{bl},
	})
	d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: outside, Recipient: "u@relay.example"})
	if d.Code != 554 || !strings.Contains(d.Text, "blocked using bl.example") {
		t.Errorf("listed client: %s", d.Reply())
	}
	e = engine(t, Options{
		Client:       []string{"warn_if_reject", "reject_rbl_client bl.example"},
		RelayDomains: []string{"relay.example"},
		Blocklists:   oneRBL{bl},
	})
	d = e.Check(context.Background(), StageRcpt, &Request{ClientIP: outside, Recipient: "u@relay.example"})
	if d.Verdict != Permit || len(d.Warnings) != 1 {
		t.Errorf("warn_if_reject: %v warnings %q; want permit with one warning", d.Verdict, d.Warnings)
	}
	// --dnsbl never checks trusted networks.
	e = engine(t, Options{DNSBL: fakeRBL{listed: map[netip.Addr]string{netip.MustParseAddr("10.0.0.5"): "x"}}})
	if d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("10.0.0.5"), Recipient: "a@b.example"}); d.Verdict != Permit {
		t.Errorf("trusted client checked against the DNSBL: %s", d.Reply())
	}
}

type owners map[string][]string

func (o owners) Owners(s string) ([]string, bool) { v, ok := o[s]; return v, ok }

func TestSenderLoginMismatch(t *testing.T) {
	e := engine(t, Options{SenderOwners: owners{"alice@example.com": {"alice"}}, RejectSenderLoginMismatch: true})
	for _, tc := range []struct {
		auth, sender string
		want         Verdict
	}{
		{"alice", "alice@example.com", Permit},
		{"bob", "alice@example.com", Reject},
		{"", "alice@example.com", Reject},
		{"bob", "bob@example.com", Reject},
		{"", "nobody@example.com", Permit},
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("127.0.0.1"), AuthID: tc.auth, Sender: tc.sender, Recipient: "x@y.example"})
		if d.Verdict != tc.want {
			t.Errorf("auth %q sender %q: %v %s; want %v", tc.auth, tc.sender, d.Verdict, d.Reply(), tc.want)
		}
	}
}

func TestCompileErrors(t *testing.T) {
	_, err := New(Options{
		Relay:  []string{"permit_mynetworks", "frobnicate", "check_sender_access"},
		Client: []string{"reject_rbl_client"},
	})
	if err == nil {
		t.Fatal("New with bad items = nil error")
	}
	for _, want := range []string{`policy.relay_restrictions: "frobnicate": unknown restriction`, `policy.client_restrictions`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
}

// TestCompileExtraWords: a main.cf line pasted as one list item
// ("permit_mynetworks permit_sasl_authenticated reject_unauth_destination")
// must not compile to its first word alone, which leaves the relay open.
func TestCompileExtraWords(t *testing.T) {
	for _, item := range []string{
		"permit_mynetworks permit_sasl_authenticated reject_unauth_destination",
		"reject_unauth_destination foo",
		"permit_sasl_authenticated reject",
		"warn_if_reject reject_unauth_destination",
	} {
		_, err := New(Options{Relay: []string{item}})
		if err == nil || !strings.Contains(err.Error(), "takes no argument") {
			t.Errorf("relay_restrictions [%q]: %v; want an error saying it takes no argument", item, err)
		}
	}
}

func TestDNSBLSwitch(t *testing.T) {
	e := engine(t, Options{DNSBL: fakeRBL{listed: map[netip.Addr]string{outside: "listed"}}, RelayDomains: []string{"relay.example"}})
	req := &Request{ClientIP: outside, Recipient: "u@relay.example"}
	if d := e.Check(context.Background(), StageRcpt, req); d.Verdict != Reject {
		t.Fatalf("listed client with the DNSBL on: %v; want reject", d.Verdict)
	}
	e.SetDNSBL(false)
	if d := e.Check(context.Background(), StageRcpt, req); d.Verdict != Permit {
		t.Errorf("listed client after dnsbl stop: %v; want permit", d.Verdict)
	}
}

func TestParseNetworks(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "mynetworks")
	os.WriteFile(list, []byte("# ours\n192.0.2.0/24 198.51.100.1 # a host\n\n[2001:db8::]/32\n"), 0o644)
	cidr := filepath.Join(dir, "mynetworks.cidr")
	// A cidr table is looked up, so its negations and if blocks count.
	os.WriteFile(cidr, []byte("if 203.0.113.0/24\n!203.0.113.66 OK\nendif\n"), 0o644)
	var set table.Set
	checkTrusted(t, &set, []string{"127.0.0.0/8", "::1", list, "cidr:" + cidr}, map[string]bool{
		"127.0.0.1": true, "::1": true, "192.0.2.9": true, "198.51.100.1": true, "198.51.100.2": false,
		"2001:db8::5": true, "203.0.113.7": true, "203.0.113.66": false, "10.0.0.1": false,
	})
	_, err := ParseNetworks([]string{"nonsense", list + ".missing", "cidr:" + list + ".missing"}, &set)
	if err == nil || !strings.Contains(err.Error(), `"nonsense" is not a network`) || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("ParseNetworks with three bad entries = %v; want three errors", err)
	}
}

// checkTrusted reads mynetworks from entries and checks whom it trusts.
func checkTrusted(t *testing.T, set *table.Set, entries []string, want map[string]bool) {
	t.Helper()
	rules, err := ParseNetworks(entries, set)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{MyNetworkRules: rules})
	if err != nil {
		t.Fatal(err)
	}
	for ip, w := range want {
		if got := e.Trusted(netip.MustParseAddr(ip)); got != w {
			t.Errorf("mynetworks %q: Trusted(%s) = %v; want %v", entries, ip, got, w)
		}
	}
}

// TestPostmasterForAnyone: the relay's own postmaster takes mail from any
// client (RFC 5321 section 4.5.1), and only that one address: other
// domains' postmasters and probes dressed as it are still refused.
func TestPostmasterForAnyone(t *testing.T) {
	e := engine(t, Options{Postmaster: "postmaster@relay.test"})
	for rcpt, want := range map[string]bool{
		"postmaster@relay.test":                     true,
		"Postmaster@RELAY.TEST":                     true,
		"postmaster@elsewhere.example":              false,
		"postmaster%elsewhere.example@relay.test":   false,
		`"postmaster@relay.test"@elsewhere.example`: false,
		"abuse@relay.test":                          false,
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: outside, Sender: "a@b.example", Recipient: rcpt})
		if got := d.Verdict != Reject; got != want {
			t.Errorf("RCPT %q from outside: %v %s; want accepted %v", rcpt, d.Verdict, d.Reply(), want)
		}
	}
}

// keywordTrust trusts every client, with a keyword, as "server none
// *.*.*.* KEYWORD" does.
type keywordTrust string

func (k keywordTrust) Trusted(netip.Addr) (string, bool) { return string(k), true }

// seenVerifier records the requests it is asked about and accepts them.
type seenVerifier struct{ reqs []Request }

func (v *seenVerifier) Verify(_ context.Context, req *Request) Decision {
	v.reqs = append(v.reqs, *req)
	return Decision{}
}

// TestVerifierTrustedKeyword: as in E-MailRelay, a client trusted by a
// "server none ADDRESS KEYWORD" line is verified with KEYWORD as its auth
// id; a client that logged in with its login.
func TestVerifierTrustedKeyword(t *testing.T) {
	v := &seenVerifier{}
	e := engine(t, Options{Trusted: keywordTrust("lan"), Verifier: v})
	for _, auth := range []string{"", "alice"} {
		e.Check(context.Background(), StageRcpt, &Request{ClientIP: outside, AuthID: auth, Recipient: "u@elsewhere.example"})
	}
	if len(v.reqs) != 2 || v.reqs[0].AuthID != "lan" || v.reqs[1].AuthID != "alice" {
		t.Errorf("verifier asked %+v; want auth ids lan (trusted, no login), then alice", v.reqs)
	}
}

// TestRejectDeferReplies: Postfix words the plain reject and defer
// restrictions after the list they are in: "<who>: Client host rejected:
// Access denied" and "... Try again later" (smtpd_check.c).
func TestRejectDeferReplies(t *testing.T) {
	req := Request{ClientIP: outside, Helo: "helo.example", Sender: "s@example.org", Recipient: "r@relay.example"}
	for _, c := range []struct {
		list func(o *Options) *[]string
		who  string
	}{
		{func(o *Options) *[]string { return &o.Client }, "<unknown[203.0.113.9]>: Client host"},
		{func(o *Options) *[]string { return &o.Helo }, "<helo.example>: Helo command"},
		{func(o *Options) *[]string { return &o.Sender }, "<s@example.org>: Sender address"},
		{func(o *Options) *[]string { return &o.Recipient }, "<r@relay.example>: Recipient address"},
	} {
		for _, r := range []struct{ item, want string }{
			{"reject", "554 5.7.1 " + c.who + " rejected: Access denied"},
			{"defer", "450 4.3.2 " + c.who + " rejected: Try again later"},
		} {
			o := Options{RelayDomains: []string{"relay.example"}}
			*c.list(&o) = []string{r.item}
			e := engine(t, o)
			rq := req
			if got := e.Check(context.Background(), StageRcpt, &rq).Reply(); got != r.want {
				t.Errorf("%s in the list of %s: %q; want %q", r.item, c.who, got, r.want)
			}
		}
	}
}

// TestTableSpecWithSpaces: a table written in the restriction itself
// (inline:{ ... }, regexp:{ {...}, {...} }), which docs/tables.md allows,
// is one argument, on the restriction's item or the next.
func TestTableSpecWithSpaces(t *testing.T) {
	for _, list := range [][]string{
		{"check_client_access inline:{ 203.0.113.9=REJECT, 192.0.2.1=OK }"},
		{"check_client_access", "cidr:{ {203.0.113.9 REJECT}, {192.0.2.1 OK} }"},
	} {
		e := engine(t, Options{Client: list, Tables: SetTables{Set: &table.Set{}}, RelayDomains: []string{"relay.example"}})
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: outside, Recipient: "r@relay.example"})
		if want := "554 5.7.1 <unknown[203.0.113.9]>: Client host rejected: Access denied"; d.Reply() != want {
			t.Errorf("client_restrictions %q: %q; want %q", list, d.Reply(), want)
		}
	}
}

// TestRelayDomainsFilesAndTables: relay_domains takes Postfix's files (one
// or more domains a line) and tables, as mynetworks does, not only names;
// a path is never taken for a domain.
func TestRelayDomainsFilesAndTables(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "relay_domains")
	os.WriteFile(list, []byte("# ours\nfile.example, other.example\n"), 0o644)
	hash := filepath.Join(dir, "relay_domains.hash")
	os.WriteFile(hash, []byte("table.example OK\n"), 0o644)
	e := engine(t, Options{RelayDomains: []string{list, "hash:" + hash, "name.example"}, Tables: SetTables{Set: &table.Set{}}})
	for rcpt, ok := range map[string]bool{
		"u@file.example": true, "u@other.example": true, "u@table.example": true, "u@sub.table.example": true,
		"u@name.example": true, "u@elsewhere.example": false, "u%x@table.example": false,
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: outside, Recipient: rcpt})
		if (d.Verdict == Permit) != ok {
			t.Errorf("RCPT %s from outside: %s; want relayed %v", rcpt, d.Reply(), ok)
		}
	}
	if _, err := New(Options{RelayDomains: []string{filepath.Join(dir, "absent")}}); err == nil || !strings.Contains(err.Error(), "policy.relay_domains") {
		t.Errorf("relay_domains naming a missing file: %v; want an error naming policy.relay_domains", err)
	}
}

// TestRelayDomainsIDN: an internationalized relay domain matches in its
// U-label and A-label forms both, whichever form relay_domains names,
// and a look-alike still does not.
func TestRelayDomainsIDN(t *testing.T) {
	for _, listed := range []string{"bücher.example", "xn--bcher-kva.example"} {
		e := engine(t, Options{RelayDomains: []string{listed}})
		for rcpt, want := range map[string]Verdict{
			"a@bücher.example":             Dunno,
			"a@xn--bcher-kva.example":      Dunno,
			"a@sub.XN--BCHER-KVA.example":  Dunno,
			"a@bucher.example":             Reject,
			"a@xn--bcher-kva.example.evil": Reject,
		} {
			d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: outside, Sender: "a@b.example", Recipient: rcpt})
			if (d.Verdict == Reject) != (want == Reject) {
				t.Errorf("relay_domains %q, RCPT %q: %v %s; want %v", listed, rcpt, d.Verdict, d.Reply(), want)
			}
		}
	}
}

// TestRevTabRoutedRecipientOK: the pre-2.10 Postfix layout, where
// recipient_restrictions whitelist the relay's domains with
// check_recipient_access before reject_unauth_destination. As in Postfix,
// the table's OK must not permit a recipient that names another
// destination inside (the percent hack, a quoted @, a bang path): such an
// OK counts as DUNNO, and reject_unauth_destination refuses it. Plain
// recipients in the domain stay permitted by the table.
func TestRevTabRoutedRecipientOK(t *testing.T) {
	e := engine(t, Options{
		Relay:     []string{},
		Recipient: []string{"permit_mynetworks", "check_recipient_access", "hash:/etc/postfix/relay_recipients", "reject_unauth_destination"},
		Tables:    oneTable{mapTable{"relay.example": "OK"}},
	})
	for _, rcpt := range []string{
		"victim%elsewhere.example@relay.example",
		`"victim@elsewhere.example"@relay.example`,
		"elsewhere.example!victim@relay.example",
		"VICTIM%ELSEWHERE.EXAMPLE@relay.example",
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: outside, Sender: "a@b.example", Recipient: rcpt})
		if d.Verdict != Reject || d.Reply() != "554 5.7.1 <"+rcpt+">: Relay access denied" {
			t.Errorf("routed recipient %q whitelisted by the table: %v %q; want 554 relay access denied", rcpt, d.Verdict, d.Reply())
		}
	}
	if d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: outside, Sender: "a@b.example", Recipient: "user@relay.example"}); d.Verdict != Permit {
		t.Errorf("user@relay.example: %v %q; want permit (the table's OK)", d.Verdict, d.Reply())
	}
}

// TestRevTabNonFQDNHeloTrailingDot: Postfix drops a trailing dot before
// reject_non_fqdn_helo_hostname looks for one, so "HELO localhost." is
// refused like "HELO localhost"; a qualified name with a trailing dot
// passes.
func TestRevTabNonFQDNHeloTrailingDot(t *testing.T) {
	e := engine(t, Options{Helo: []string{"reject_non_fqdn_helo_hostname"}})
	for helo, want := range map[string]string{
		"localhost":         "504 5.5.2 <localhost>: Helo command rejected: need fully-qualified hostname",
		"localhost.":        "504 5.5.2 <localhost.>: Helo command rejected: need fully-qualified hostname",
		"mail.example.com.": "",
		"mail.example.com":  "",
		"[192.0.2.1]":       "",
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("127.0.0.1"), Helo: helo, Recipient: "r@elsewhere.example"})
		if want == "" && d.Refuses() || want != "" && d.Reply() != want {
			t.Errorf("HELO %s: %v %q; want %q", helo, d.Verdict, d.Reply(), want)
		}
	}
}

// TestRevTabAccessResultsChecked: an access table whose results are no
// access(5) actions is refused when the lists are compiled, each bad
// result named by file and line, instead of answering 451 to every client
// it matches.
func TestRevTabAccessResultsChecked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sender_access")
	os.WriteFile(path, []byte("ok.example OK\nx.example REJCET typo\ny.example mysql:/etc/postfix/x.cf\nz.example 550 5.7.1 fine\n"), 0o644)
	_, err := New(Options{
		Sender: []string{"check_sender_access hash:" + path},
		Relay:  []string{"reject_unauth_destination"},
		Tables: SetTables{Set: &table.Set{}},
	})
	if err == nil {
		t.Fatal("New with bad access results = nil error")
	}
	for _, want := range []string{path + ":2: ", "REJCET", path + ":3: ", "lookup tables are not allowed"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), path+":1:") || strings.Contains(err.Error(), path+":4:") {
		t.Errorf("error %q names a good line", err)
	}
}

// TestDeferIf: DEFER_IF_PERMIT defers a recipient that everything else
// would let through (OK, DISCARD, or no opinion), and leaves a refusal
// alone; DEFER_IF_REJECT turns a later rejection into its own deferral
// and lets a permit through. Both carry Postfix's wording.
func TestDeferIf(t *testing.T) {
	e := engine(t, Options{
		MyNetworks: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")},
		Client:     []string{"check_client_access cidr:/x"},
		Recipient:  []string{"check_recipient_access hash:/y"},
		Relay:      []string{"permit_mynetworks", "reject_unauth_destination"},
		Tables: oneTable{mapTable{
			"192.0.2.1": "DEFER_IF_PERMIT Greylisted", "192.0.2.2": "DEFER_IF_REJECT 4.7.0 try later",
			"192.0.2.3":       "DEFER_IF_PERMIT",
			"refused.example": "REJECT no", "gone.example": "DISCARD",
		}},
	})
	for _, tc := range []struct {
		ip, rcpt string
		want     Verdict
		reply    string
	}{
		{"192.0.2.1", "a@elsewhere.example", Defer, "450 4.7.1 <unknown[192.0.2.1]>: Client host rejected: Greylisted"},
		{"192.0.2.1", "a@gone.example", Defer, "450 4.7.1 <unknown[192.0.2.1]>: Client host rejected: Greylisted"},
		{"192.0.2.1", "a@refused.example", Reject, "554 5.7.1 <a@refused.example>: Recipient address rejected: no"},
		{"192.0.2.3", "a@elsewhere.example", Defer, "450 4.7.1 <unknown[192.0.2.3]>: Client host rejected: Service unavailable"},
		// DEFER_IF_REJECT lasts for its stage (the client's) only.
		{"192.0.2.2", "a@refused.example", Reject, "554 5.7.1 <a@refused.example>: Recipient address rejected: no"},
		{"192.0.2.2", "a@elsewhere.example", Permit, ""},
		{"192.0.2.9", "a@elsewhere.example", Permit, ""},
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr(tc.ip), Sender: "s@example.org", Recipient: tc.rcpt})
		if d.Verdict != tc.want || (tc.reply != "" && d.Reply() != tc.reply) {
			t.Errorf("client %s, RCPT %s: %v %q; want %v %q", tc.ip, tc.rcpt, d.Verdict, d.Reply(), tc.want, tc.reply)
		}
	}
}

// TestRestrictionClasses: RESTRICTION_CLASS_README's protected
// destinations: only insiders may mail the internal list, through a
// restriction class named in a table result; a restriction list written
// in a result runs in place (a permit there ends the list it stands in);
// a class that names itself through its table stops at a 451.
func TestRestrictionClasses(t *testing.T) {
	tables := map[string]mapTable{
		"protected": {"all@example.com": "insiders_only", "open@example.com": "permit_mynetworks, reject",
			"loop@example.com": "looping"},
		"insiders": {"example.com": "OK"},
		"loops":    {"example.com": "looping"},
	}
	e := engine(t, Options{
		MyNetworks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Relay:      []string{"permit_mynetworks", "reject_unauth_destination"},
		Recipient:  []string{"check_recipient_access hash:protected"},
		RestrictionClasses: map[string][]string{
			"insiders_only": {"check_sender_access hash:insiders", "reject"},
			"looping":       {"check_sender_access hash:loops"},
		},
		Tables: namedTables(tables),
	})
	for _, tc := range []struct {
		ip, sender, rcpt string
		want             Verdict
		reply            string
	}{
		{"127.0.0.1", "boss@example.com", "all@example.com", Permit, ""},
		{"127.0.0.1", "spammer@example.org", "all@example.com", Reject, "554 5.7.1 <all@example.com>: Recipient address rejected: Access denied"},
		{"127.0.0.1", "anyone@example.org", "open@example.com", Permit, ""},
		{"203.0.113.9", "anyone@example.org", "open@example.com", Reject, ""},
		{"127.0.0.1", "anyone@example.org", "other@example.com", Permit, ""},
		{"127.0.0.1", "boss@example.com", "loop@example.com", Defer, "451 4.3.5 Server configuration error"},
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr(tc.ip), Sender: tc.sender, Recipient: tc.rcpt})
		if d.Verdict != tc.want || (tc.reply != "" && d.Reply() != tc.reply) {
			t.Errorf("%s from %s to %s: %v %q; want %v %q", tc.ip, tc.sender, tc.rcpt, d.Verdict, d.Reply(), tc.want, tc.reply)
		}
	}
	for _, bad := range []map[string][]string{
		{"reject": {"permit"}},
		{"bad_class": {"frobnicate"}},
	} {
		if _, err := New(Options{RestrictionClasses: bad, Tables: namedTables(tables)}); err == nil {
			t.Errorf("classes %v accepted", bad)
		}
	}
	if _, err := New(Options{Recipient: []string{"check_recipient_access hash:protected"}, Tables: namedTables(tables)}); err == nil ||
		!strings.Contains(err.Error(), `unknown action or restriction "`) {
		t.Errorf("results naming undefined classes: New error %v; want the unknown name", err)
	}
}

// namedTables opens each table by the name after its type; the tables
// check their results as the table package's do.
type namedTables map[string]mapTable

func (n namedTables) Open(spec string) (AccessMap, error) {
	_, name, _ := strings.Cut(spec, ":")
	m, ok := n[name]
	if !ok {
		return nil, fmt.Errorf("no table %q", spec)
	}
	return checkedTable{m}, nil
}

type checkedTable struct{ mapTable }

func (c checkedTable) ValidateResults(valid func(string) error) error {
	for k, v := range c.mapTable {
		if err := valid(v); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
	return nil
}

// TestRevNew4CompileCommas: main.cf's restriction lists are
// comma-separated; an item copied with its comma ("permit_mynetworks,")
// or a line pasted as one item with commas is refused saying to write
// one restriction per item without the comma. It said only "unknown
// restriction", about a name the user can see is right.
func TestRevNew4CompileCommas(t *testing.T) {
	for _, item := range []string{"permit_mynetworks,", "permit_mynetworks, reject_unauth_destination", "permit_mynetworks,reject_unauth_destination"} {
		_, err := New(Options{Relay: []string{item, "reject_unauth_destination"}})
		if err == nil || !strings.Contains(err.Error(), "one restriction per list item, without the comma") {
			t.Errorf("%q: %v; want it refused saying to drop the comma", item, err)
		}
	}
}
