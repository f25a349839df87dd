package policy

import (
	"context"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestDataStage: the data list runs at StageData alone, in DATA's
// wording; reject_multi_recipient_bounce refuses the second recipient at
// RCPT and two at DATA; reject_unauth_pipelining asks the engine's user
// to watch for it; a policy server hears DATA and the count.
func TestDataStage(t *testing.T) {
	e := engine(t, Options{
		Client:    []string{"reject_unauth_pipelining"},
		Recipient: []string{"reject_multi_recipient_bounce"},
		Data:      []string{"reject_multi_recipient_bounce", "reject_unauth_pipelining"},
	})
	if !e.WatchesPipelining() {
		t.Error("reject_unauth_pipelining does not ask for pipelining to be watched")
	}
	ip := netip.MustParseAddr("127.0.0.1")
	for _, tc := range []struct {
		stage Stage
		req   Request
		want  string
	}{
		{StageRcpt, Request{Recipient: "b@x.example", RecipientCount: 0}, ""},
		{StageRcpt, Request{Recipient: "c@x.example", RecipientCount: 1}, "550 5.5.3 <c@x.example>: Recipient address rejected: Multi-recipient bounce"},
		{StageRcpt, Request{Sender: "a@x.example", Recipient: "c@x.example", RecipientCount: 1}, ""},
		{StageData, Request{Recipient: "b@x.example", RecipientCount: 1}, ""},
		{StageData, Request{RecipientCount: 2}, "550 5.5.3 <DATA>: Data command rejected: Multi-recipient bounce"},
		{StageData, Request{Sender: "a@x.example", RecipientCount: 2, IllPipelining: true}, "503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining"},
		{StageRcpt, Request{Sender: "a@x.example", Recipient: "b@x.example", IllPipelining: true}, "503 5.5.0 <unknown[127.0.0.1]>: Client host rejected: Improper use of SMTP command pipelining"},
	} {
		tc.req.ClientIP = ip
		d := e.Check(context.Background(), tc.stage, &tc.req)
		got := ""
		if d.Refuses() {
			got = d.Reply()
		}
		if got != tc.want {
			t.Errorf("stage %d %+v: %q; want %q", tc.stage, tc.req, got, tc.want)
		}
	}
	attrs := policyRequest(StageData, &Request{ClientIP: ip, RecipientCount: 3})
	if !slices.Contains(attrs, policyAttr{"protocol_state", "DATA"}) || !slices.Contains(attrs, policyAttr{"recipient_count", "3"}) {
		t.Errorf("policy request at DATA: %v", attrs)
	}
}

// TestEndOfDataStage: the end-of-data list runs at StageEndOfData alone,
// in Postfix's END-OF-MESSAGE wording, and a policy server hears that
// state with the count, the size and the queue id.
func TestEndOfDataStage(t *testing.T) {
	e := engine(t, Options{EndOfData: []string{"reject_multi_recipient_bounce"}})
	if !e.ChecksEndOfData() || e.ChecksData() {
		t.Errorf("ChecksEndOfData %v, ChecksData %v; want true, false", e.ChecksEndOfData(), e.ChecksData())
	}
	ip := netip.MustParseAddr("192.0.2.7")
	bounce := &Request{ClientIP: ip, RecipientCount: 2}
	if d := e.Check(context.Background(), StageEndOfData, bounce); d.Reply() != "550 5.5.3 <END-OF-MESSAGE>: End-of-data rejected: Multi-recipient bounce" {
		t.Errorf("end of data: %v %q", d.Verdict, d.Reply())
	}
	if d := e.Check(context.Background(), StageData, bounce); d.Refuses() {
		t.Errorf("the end-of-data list ran at DATA: %q", d.Reply())
	}
	attrs := policyRequest(StageEndOfData, &Request{ClientIP: ip, RecipientCount: 2, Size: 4321, QueueID: "6B0252D2F906FE64"})
	for _, a := range []policyAttr{{"protocol_state", "END-OF-MESSAGE"}, {"recipient_count", "2"}, {"size", "4321"}, {"queue_id", "6B0252D2F906FE64"}} {
		if !slices.Contains(attrs, a) {
			t.Errorf("policy request at the end of data lacks %v: %v", a, attrs)
		}
	}
}

// TestLoginMismatchVariants: Postfix's three narrower forms of
// reject_sender_login_mismatch.
func TestLoginMismatchVariants(t *testing.T) {
	own := owners{"alice@x.example": {"alice"}}
	for _, tc := range []struct {
		rule, auth, sender string
		refused            bool
	}{
		{"reject_authenticated_sender_login_mismatch", "", "alice@x.example", false},
		{"reject_authenticated_sender_login_mismatch", "bob", "alice@x.example", true},
		{"reject_authenticated_sender_login_mismatch", "bob", "free@x.example", true},
		{"reject_authenticated_sender_login_mismatch", "alice", "alice@x.example", false},
		{"reject_unauthenticated_sender_login_mismatch", "", "alice@x.example", true},
		{"reject_unauthenticated_sender_login_mismatch", "", "free@x.example", false},
		{"reject_unauthenticated_sender_login_mismatch", "bob", "alice@x.example", false},
		{"reject_known_sender_login_mismatch", "bob", "free@x.example", false},
		{"reject_known_sender_login_mismatch", "bob", "alice@x.example", true},
		{"reject_known_sender_login_mismatch", "", "alice@x.example", true},
		{"reject_known_sender_login_mismatch", "alice", "alice@x.example", false},
	} {
		e := engine(t, Options{SenderOwners: own, Sender: []string{tc.rule}})
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("127.0.0.1"), AuthID: tc.auth, Sender: tc.sender, Recipient: "r@y.example"})
		if d.Refuses() != tc.refused {
			t.Errorf("%s, login %q, sender %s: %q; refused want %v", tc.rule, tc.auth, tc.sender, d.Reply(), tc.refused)
		}
	}
}

// TestSASLAndReverseNameAccess: check_sasl_access looks up the login
// name exactly, check_reverse_client_hostname_access the unverified PTR
// name and its parents, with Postfix's wording.
func TestSASLAndReverseNameAccess(t *testing.T) {
	e := engine(t, Options{Tables: SetTables{Set: &table.Set{}}, MyNetworks: []netip.Prefix{},
		Client: []string{"check_sasl_access inline:{ { mallory = REJECT compromised } }",
			"check_reverse_client_hostname_access inline:{ { dyn.example = REJECT dynamic pool } }"}})
	if !e.NeedsClientNames() {
		t.Error("check_reverse_client_hostname_access does not turn name lookups on")
	}
	ip := netip.MustParseAddr("192.0.2.7")
	for _, tc := range []struct {
		auth, rev, want string
	}{
		{"mallory", "", "554 5.7.1 <mallory>: SASL login name rejected: compromised"},
		{"MALLORY2", "", ""},
		// Postfix's reply names the client as check_client_access's
		// does (namaddr: the verified name, else unknown), not by the
		// PTR name it looked up.
		{"", "host-7.dyn.example", "554 5.7.1 <unknown[192.0.2.7]>: Unverified Client host rejected: dynamic pool"},
		{"", "mail.static.example", ""},
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: ip, AuthID: tc.auth, ReverseName: tc.rev, Sender: "a@x.example", Recipient: "b@y.example"})
		got := ""
		if d.Refuses() {
			got = d.Reply()
		}
		if tc.want == "" && d.Verdict == Reject && strings.Contains(d.Text, "Relay access denied") {
			got = "" // the relay list, not the check
		}
		if got != tc.want {
			t.Errorf("login %q, PTR %q: %q; want %q", tc.auth, tc.rev, got, tc.want)
		}
	}
}

type nxDomains struct{}

func (n nxDomains) MailDomain(context.Context, string) error { return tempErr{} }

type tempErr struct{}

func (tempErr) Error() string   { return "SERVFAIL" }
func (tempErr) Temporary() bool { return true }

// TestUnlistedAfterDeferIfPermit: a DNS failure that holds a
// DEFER_IF_PERMIT answers before relay_recipient_maps, as in Postfix,
// whose rcpt_cmd runs the recipient tables after smtpd_check_rcpt.
func TestUnlistedAfterDeferIfPermit(t *testing.T) {
	e := engine(t, Options{Tables: SetTables{Set: &table.Set{}}, RelayDomains: []string{"relay.example"},
		RelayRecipientMaps: []string{"inline:{ alice@relay.example=OK }"}, MailDomains: nxDomains{},
		Sender: []string{"reject_unknown_sender_domain"}})
	d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: netip.MustParseAddr("127.0.0.1"), Sender: "a@servfail.example", Recipient: "carol@relay.example"})
	if d.Code != 450 {
		t.Errorf("unlisted recipient with a pending DNS deferral: %q; want the 450", d.Reply())
	}
}
