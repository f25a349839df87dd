package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// TestGm22RelayAdminRuleNoBan: Google's MX (the smarthost here, trusted)
// refuses a client's message at the final dot in Gmail's words, but marked
// "- gcdp <session>": a Google Workspace administrator's own rule typed
// them. The relay reports it and bans nobody, in store-and-forward and in
// proxy mode: the client connects again and is served.
func TestGm22RelayAdminRuleNoBan(t *testing.T) {
	t.Parallel()
	const text = "[192.0.2.25 12] Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked. - gcdp"
	for _, proxy := range []bool{false, true} {
		g := newFakeGmail(t)
		ip, from, to := "127.0.3.10", "a@gm22.example", "u@workspace.test"
		if proxy {
			ip, to = "127.0.3.11", "p@workspace.test"
		}
		g.answer(to, stData, gmailReply("550", "5.7.1", text))
		r := startEnforcer(t, g.Addr(), enforceOpts{proxy: proxy})
		if _, err := sendFrom(r.addr(), ip, from, []string{to}, gmailMessage(from, fmt.Sprintf("gm22 %v", proxy))); err != nil {
			t.Fatal(err)
		}
		r.waitEvent("report", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("client") == ip })
		time.Sleep(300 * time.Millisecond) // a late ban would show now
		es := enforceEvents(r, ip)
		if len(es) != 1 || es[0].Event != "report" || es[0].Get("rule") != "gmail-unsolicited" {
			t.Errorf("proxy %v: events %v; want one report of rule gmail-unsolicited", proxy, fieldsOf(es))
		}
		tx, err := sendFrom(r.addr(), ip, from, []string{"other@gmail.test"}, gmailMessage(from, "again"))
		if err != nil || tx.Greeting.code() != 220 {
			t.Errorf("proxy %v: the client is refused afterwards: %v %+v", proxy, err, tx.Greeting)
		}
	}
}
