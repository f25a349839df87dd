package e2e

// Outside review of the relay's delivery status notifications against
// Postfix's bounce(8): refusals at each stage of the upstream transaction,
// the null sender, oversized originals.

import (
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// revDSNNotice waits for the notice the fake upstream got for rcpt (from
// <>) and parses it.
func revDSNNotice(t *testing.T, fake *harness.FakeSMTP, rcpt string) dsnNotice {
	t.Helper()
	var data []byte
	waitFor(15*time.Second, func() bool {
		for _, tx := range txsFrom(fake, "") {
			if tx.Accepted() && len(tx.To()) == 1 && tx.To()[0] == rcpt {
				data = tx.Data
				return true
			}
		}
		return false
	})
	if data == nil {
		t.Fatalf("no notice reached the upstream for %s", rcpt)
	}
	return parseNotice(t, string(data))
}

// TestRevDSNStages: the upstream refuses at MAIL, RCPT, DATA and the final
// dot, with multi-line replies. Each notice says, as Postfix's does, which
// host said what "(in reply to ... command)", and its delivery-status
// carries the reply whole, the Remote-MTA, Arrival-Date and
// Last-Attempt-Date.
func TestRevDSNStages(t *testing.T) {
	t.Parallel()
	const (
		mailRefused = "553-5.7.1 sender rejected\r\n553 5.7.1 see https://example.net/why"
		rcptRefused = "550-5.1.1 The email account that you tried to reach does not exist.\r\n550 5.1.1 Please try again."
		dataRefused = "554 5.5.1 no valid recipients here"
		dotRefused  = "552-5.3.4 message too big\r\n552 5.3.4 for this host"
	)
	fake := harness.NewFakeSMTP(t, harness.Script{
		Hostname: "mx.upstream.test",
		RcptFor:  map[string]harness.Response{"bad@example.net": {Reply: rcptRefused}},
		Decide: func(stage harness.Stage, tx harness.Transaction, arg string) harness.Response {
			switch {
			case stage == harness.StageMail && arg == "mail@x.example":
				return harness.Response{Reply: mailRefused}
			case stage == harness.StageData && tx.MailFrom == "data@x.example":
				return harness.Response{Reply: dataRefused}
			case stage == harness.StageEndOfData && tx.MailFrom == "dot@x.example":
				return harness.Response{Reply: dotRefused}
			}
			return harness.Response{}
		},
	})
	r := opsRelay(t, fake.Addr(), "", "--forward-on-disconnect")
	cases := []struct {
		from, to, reply, stage, status string
	}{
		{"mail@x.example", "ok@example.net", mailRefused, "MAIL FROM", "5.7.1"},
		{"rcpt@x.example", "bad@example.net", rcptRefused, "RCPT TO", "5.1.1"},
		{"data@x.example", "ok@example.net", dataRefused, "DATA", "5.5.1"},
		{"dot@x.example", "ok@example.net", dotRefused, "end of DATA", "5.3.4"},
	}
	for _, c := range cases {
		mustSend(t, r.addr(), c.from, []string{c.to}, message("stage "+c.stage))
	}
	for _, c := range cases {
		t.Run(c.stage, func(t *testing.T) {
			n := revDSNNotice(t, fake, c.from)
			oneLine := strings.ReplaceAll(c.reply, "\r\n", " ")
			text := strings.Join(strings.Fields(n.Bodies[0]), " ")
			want := "<" + c.to + ">: host 127.0.0.1 said: " + oneLine + " (in reply to " + c.stage + " command)"
			if !strings.Contains(text, want) {
				t.Errorf("notice text lacks %q:\n%s", want, n.Bodies[0])
			}
			if len(n.PerRecipient) != 1 {
				t.Fatalf("%d recipient groups; want 1\n%s", len(n.PerRecipient), n.Bodies[1])
			}
			g := n.PerRecipient[0]
			for name, want := range map[string]string{
				"Final-Recipient": "rfc822; " + c.to,
				"Action":          "failed",
				"Status":          c.status,
				"Remote-MTA":      "dns; 127.0.0.1",
				"Diagnostic-Code": "smtp; " + oneLine,
			} {
				if got := dsnField(g, name); got != want {
					t.Errorf("%s: %q; want %q", name, got, want)
				}
			}
			if !g.Has("Last-Attempt-Date") {
				t.Errorf("no Last-Attempt-Date:\n%s", n.Bodies[1])
			}
			if !n.PerMessage.Has("Arrival-Date") {
				t.Errorf("no Arrival-Date:\n%s", n.Bodies[1])
			}
			t.Logf("notice:\n%s\n%s", n.Bodies[0], n.Bodies[1])
		})
	}
}

// TestRevDSNRoutedRemoteMTA: a recipient that transport_maps sends to a
// host other than the smarthost, which refuses it. The notice (sent on
// through the smarthost) names the host that said it, as Postfix's
// "host NAME[IP] said:" and Remote-MTA, not the smarthost.
func TestRevDSNRoutedRemoteMTA(t *testing.T) {
	t.Parallel()
	const refused = "550 5.1.1 <bob@other.example>: no such user"
	smarthost := harness.NewFakeSMTP(t, harness.Script{Hostname: "smarthost.test"})
	other := harness.NewFakeSMTP(t, harness.Script{Hostname: "mx.other.test",
		RcptFor: map[string]harness.Response{"bob@other.example": {Reply: refused}}})
	dns := harness.StartDNS(t, "mx.other.test. A 127.0.0.1\n")
	_, port, _ := strings.Cut(other.Addr(), ":")
	cfg := "[routing]\ndns_server = \"" + dns.Addr() + "\"\n" +
		"transport_maps = [\"inline:{ other.example=smtp:[mx.other.test]:" + port + " }\"]\n"
	r := opsRelay(t, smarthost.Addr(), cfg, "--forward-on-disconnect")
	mustSend(t, r.addr(), "alice@x.example", []string{"bob@other.example"}, message("routed"))
	n := revDSNNotice(t, smarthost, "alice@x.example")
	text := strings.Join(strings.Fields(n.Bodies[0]), " ")
	want := "<bob@other.example>: host mx.other.test[127.0.0.1] said: " + refused + " (in reply to RCPT TO command)"
	if !strings.Contains(text, want) {
		t.Errorf("notice text lacks %q:\n%s", want, n.Bodies[0])
	}
	if len(n.PerRecipient) != 1 {
		t.Fatalf("%d recipient groups; want 1\n%s", len(n.PerRecipient), n.Bodies[1])
	}
	if got := dsnField(n.PerRecipient[0], "Remote-MTA"); got != "dns; mx.other.test" {
		t.Errorf("Remote-MTA: %q; want \"dns; mx.other.test\"", got)
	}
}
