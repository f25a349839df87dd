package enforce

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/relaykeeper/relaykeeper/internal/dkim"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// TestEncapsulatedCopySigned: a refusal for DMARC is answered by a new
// message from the relay's own address, with the relay's envelope sender,
// the original attached byte for byte, and a DKIM signature of the relay's
// domain that verifies against the published key.
func TestEncapsulatedCopySigned(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "key.pem")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	signer, err := dkim.LoadSigner("relay.example", "sel", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	sp := openSpool(t, dir)
	original := "From: Carol <carol@dmarc.example>\r\nTo: dave@gmail.test\r\nSubject: hi\r\nMessage-ID: <o-1@dmarc.example>\r\n\r\nhello\r\n"
	orig := filepath.Join(dir, "original.eml")
	os.WriteFile(orig, []byte(original), 0o600)
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, Spool: sp,
		RelayAddress: "postmaster@relay.example", Signer: signer}
	out := e.Act(context.Background(), Refusal{ID: "Q1", Client: netip.MustParseAddr("203.0.113.9"), From: "carol@dmarc.example",
		To: []string{"dave@gmail.test"}, ContentPath: orig,
		Upstream: upstream("550-5.7.26 Unauthenticated email from dmarc.example is not accepted due to domain's 550-5.7.26 DMARC policy. 550 5.7.26 x1 - gsmtp")})
	if !out.Encapsulated || out.Settle != spool.Sent || out.Heard.Code != 250 {
		t.Fatalf("Act = encapsulated %v, settle %q, heard %q; want true, sent, 250", out.Encapsulated, out.Settle, out.Heard.String())
	}
	ents, err := sp.List()
	if err != nil || len(ents) != 1 {
		t.Fatalf("spool holds %d messages (%v); want the copy", len(ents), err)
	}
	env, _, err := sp.Read(ents[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if env.From != "postmaster@relay.example" || len(env.Recipients) != 1 || env.Recipients[0].Addr != "dave@gmail.test" {
		t.Errorf("copy's envelope: from <%s> to %v; want <postmaster@relay.example> to dave@gmail.test", env.From, env.Recipients)
	}
	msg, err := os.ReadFile(sp.ContentPath(ents[0].ID))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(msg, []byte("\r\nFrom: postmaster@relay.example\r\n")) || !bytes.Contains(msg, []byte(original)) {
		t.Errorf("copy is not from the relay with the original attached byte for byte:\n%s", msg)
	}
	lookup := func(domain string) ([]string, error) {
		if domain != "sel._domainkey.relay.example" {
			return nil, fmt.Errorf("no TXT record for %s", domain)
		}
		return []string{"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}, nil
	}
	vs, err := msgdkim.VerifyWithOptions(bytes.NewReader(msg), &msgdkim.VerifyOptions{LookupTXT: lookup})
	if err != nil || len(vs) != 1 {
		t.Fatalf("Verify = %d signatures, %v; want 1", len(vs), err)
	}
	if vs[0].Err != nil || vs[0].Domain != "relay.example" {
		t.Errorf("signature: domain %q, %v; want relay.example, valid", vs[0].Domain, vs[0].Err)
	}
	if !strings.HasPrefix(string(msg), "DKIM-Signature:") {
		t.Errorf("the signature is not the first field:\n%.200s", msg)
	}
}

// TestDailyLimitKeepsMail: Gmail's daily sending limit (550 5.4.5) keeps
// the mail deferred, at the first refusal and at every retry; the
// administrator's alert is given once.
func TestDailyLimitKeepsMail(t *testing.T) {
	var ml bytes.Buffer
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, MailLog: maillog.New(&ml)}
	rf := Refusal{ID: "Q1", Client: netip.MustParseAddr("203.0.113.9"), From: "a@b.example", To: []string{"c@gmail.test"},
		Upstream: upstream("550 5.4.5 Daily user sending limit exceeded. x1 - gsmtp")}
	for i := range 3 {
		out := e.Act(context.Background(), rf)
		if out.Settle != spool.Deferred || out.Heard.Code != 451 || out.Plan.Verdict.Action != Alert {
			t.Errorf("attempt %d: settle %q, heard %q, verdict %v; want deferred, 451, alert", i+1, out.Settle, out.Heard.String(), out.Plan.Verdict.Action)
		}
		if !out.Plan.Repeat {
			rf.Done = append(rf.Done, out.Plan.Key)
		}
		rf.Reply = textReply(strings.Replace(rf.Reply.String(), fmt.Sprintf("x%d", i+1), fmt.Sprintf("x%d", i+2), 1))
	}
	if n := strings.Count(ml.String(), " admin-alert "); n != 1 {
		t.Errorf("%d admin-alert lines; want 1:\n%s", n, ml.String())
	}
}

// TestAdminReportNoLoop: a report to the administrator that the upstream
// refuses makes no report about itself. From a review: the refusal of a
// report ("the relay's own message") was reported, and that report,
// refused in turn, made the next one, for every reply the rules map to a
// report, a ban or an encapsulation.
func TestAdminReportNoLoop(t *testing.T) {
	for _, text := range []string{
		"550-5.7.1 Our system has detected that this message is 550-5.7.1 likely unsolicited mail. 550 5.7.1 x1 - gsmtp",
		"451 4.3.0 Temporary local problem",
	} {
		sp, err := spool.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, Spool: sp,
			RelayAddress: "postmaster@relay.example", Admin: "admin@gmail.test", MailLog: maillog.New(nil)}
		// A client's refused message: one report, as before.
		e.Act(context.Background(), Refusal{ID: "Q1", Local: true, From: "a@b.example", To: []string{"c@gmail.test"}, Upstream: upstream(text)})
		for round := range 5 {
			ents, err := sp.List()
			if err != nil {
				t.Fatal(err)
			}
			if len(ents) != 1 {
				t.Fatalf("%q, round %d: %d messages queued; want the one report", text, round, len(ents))
			}
			env, _, err := sp.Read(ents[0].ID)
			if err != nil {
				t.Fatal(err)
			}
			// The upstream refuses the report with the same reply.
			e.Act(context.Background(), QueuedRefusal(env, "admin@gmail.test", "", Upstream{Reply: upstream(text).Reply}))
		}
	}
}

// TestAdminReportsLimited: the administrator hears of one kind of report
// once an hour, however many messages an upstream refuses with a reply no
// rule knows; the mail log has every one.
func TestAdminReportsLimited(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	var log bytes.Buffer
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, Spool: sp, Now: clk.Now,
		RelayAddress: "postmaster@relay.example", Admin: "admin@relay.example", MailLog: maillog.New(&log)}
	unknown := upstream("451 4.3.0 Temporary local problem")
	queued := func() int {
		ents, err := sp.List()
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	for i := range 5 {
		e.Act(context.Background(), Refusal{ID: fmt.Sprintf("Q%d", i), Client: netip.MustParseAddr("203.0.113.9"),
			From: "a@b.example", To: []string{"c@gmail.test"}, Upstream: unknown})
	}
	if n := queued(); n != 1 {
		t.Errorf("%d reports queued for five refusals in a minute; want 1", n)
	}
	if n := strings.Count(log.String(), " report "); n != 5 {
		t.Errorf("%d report lines in the mail log; want 5", n)
	}
	clk.Advance(AlertEvery)
	e.Act(context.Background(), Refusal{ID: "Q9", Client: netip.MustParseAddr("203.0.113.9"),
		From: "a@b.example", To: []string{"c@gmail.test"}, Upstream: unknown})
	if n := queued(); n != 2 {
		t.Errorf("%d reports queued after an hour; want 2", n)
	}
}

// TestAdminReportsLimitedByRule: the limiter's key is the rule, not the
// reason's text, which names the upstream and the sender's domain: a
// client sending to hosts it controls got one report per message.
func TestAdminReportsLimitedByRule(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, Spool: sp, Now: newFakeClock().Now,
		RelayAddress: "postmaster@relay.example", Admin: "admin@relay.example", MailLog: maillog.New(nil)}
	for i := range 20 {
		u := upstream("550-5.7.1 Our system has detected that this message is 550-5.7.1 likely unsolicited mail. 550 5.7.1 x1 - gsmtp")
		u.Host = fmt.Sprintf("mx%d.attacker.example[198.51.100.%d]", i, i)
		e.Act(context.Background(), Refusal{ID: fmt.Sprintf("Q%d", i), Client: netip.MustParseAddr("203.0.113.9"),
			From: "a@b.example", To: []string{"c@gmail.test"}, Upstream: u})
	}
	if ents, _ := sp.List(); len(ents) != 1 {
		t.Errorf("%d reports queued for 20 refusals from 20 untrusted hosts; want 1", len(ents))
	}
}

// TestRevPX3ActOnSession: a refusal of the relay's own session, as the
// proxy meets it at each client's MAIL (the greeting, STARTTLS, the
// relay's login), gets an alert line at most once a minute per upstream
// and rule (the proxy meets it once per client connection), the
// administrator's alert once, and nothing for a reply no rule knows: a
// report per client connection would be noise, and the scheduler passes
// only alerts on from before a transaction.
func TestRevPX3ActOnSession(t *testing.T) {
	var ml bytes.Buffer
	clk := newFakeClock()
	e := &Enforcer{Policy: Policy{Rules: DefaultRules(), Filter: DefaultReplyFilter()}, MailLog: maillog.New(&ml), Now: clk.Now}
	login := func(n int) Refusal {
		return Refusal{Client: netip.MustParseAddr("203.0.113.9"), Upstream: Upstream{Host: "smtp.gmail.com:587", Stage: "auth",
			Reply: textReply(fmt.Sprintf("535 5.7.8 Username and Password not accepted. x%d - gsmtp", n))}}
	}
	for i := range 3 {
		e.ActOnSession(context.Background(), login(i))
	}
	e.ActOnSession(context.Background(), Refusal{Client: netip.MustParseAddr("203.0.113.9"),
		Upstream: Upstream{Stage: "greeting", Reply: textReply("554 5.7.1 go away")}})
	clk.Advance(61 * time.Second)
	e.ActOnSession(context.Background(), login(4))
	if n := strings.Count(ml.String(), " admin-alert "); n != 1 || strings.Count(ml.String(), " alert ") != 2 || strings.Count(ml.String(), "\n") != 3 {
		t.Errorf("mail log:\n%s\nwant two alert lines a minute apart, one admin-alert line and nothing else", ml.String())
	}
}
