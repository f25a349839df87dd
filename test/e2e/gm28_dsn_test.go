package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// gm28DSNs returns the delivery status notices Gmail took for sender.
func gm28DSNs(g *fakeGmail, sender string) []harness.Transaction {
	return g.txs(func(tx harness.Transaction) bool {
		return tx.Accepted() && tx.MailFrom == "" && len(tx.To()) == 1 && strings.EqualFold(tx.To()[0], sender)
	})
}

var gm28DiagCode = regexp.MustCompile(`(?m)^Diagnostic-Code: *smtp; *((?:.*\r?\n[ \t].*)*.*)`)
var gm28Status = regexp.MustCompile(`(?m)^Status: *(\S+)`)

// TestGm28RelayFateAndDSN: every reply of gmail-replies.md where Gmail
// gives it, to a relay that stores and forwards, from clients of their
// own: the message's fate follows its verdict, and a notice to the sender
// (DSN) comes only for mail that bounced, quoting Gmail's reply whole (its
// session id included) in Diagnostic-Code with a Status of 5.x.x. A ban
// or a block bounces the mail; encapsulate delivers it as a copy (no
// notice); pace and alert keep it queued (no notice); none bounces a 5xx
// and keeps a 4xx; a ban's words before the content keep it.
func TestGm28RelayFateAndDSN(t *testing.T) {
	t.Parallel()
	cases := pfe3Replies(t)
	cfg := "[enforce]\nban_delay = \"0s\"\n[delivery]\nminimal_backoff_time = \"60s\"\nmaximal_backoff_time = \"60s\"\n" +
		"pace_suspend = \"1ms\"\npace_max_suspend = \"1ms\"\npace_delay = \"1ms\"\npace_max_delay = \"1ms\"\nquota_window = \"1ms\"\n"
	gmail := newFakeGmail(t)
	type who struct{ ip, from, to string }
	whoOf := func(i int) who {
		return who{fmt.Sprintf("127.0.8.%d", 10+i), fmt.Sprintf("f%d@fate%d.example", i, i), fmt.Sprintf("f%d@gmail.test", i)}
	}
	for i, c := range cases {
		w := whoOf(i)
		k := w.to
		if c.stage() == stMail {
			k = w.from
		}
		gmail.answer(k, c.stage(), c.reply(i, w.from))
	}
	r := startEnforcer(t, gmail.Addr(), enforceOpts{config: cfg})
	ids := make([]string, len(cases))
	for i := range cases {
		w := whoOf(i)
		tx, err := sendFrom(r.addr(), w.ip, w.from, []string{w.to}, gmailMessage(w.from, fmt.Sprintf("fate case %d", i)))
		if err != nil || tx.Final.code() != 250 {
			t.Fatalf("case %d: send: %v %+v", i, err, tx)
		}
		ids[i] = queuedID(t, tx.Final)
		r.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == ids[i] })
	}
	notices := 0
	for i, c := range cases {
		w := whoOf(i)
		name := fmt.Sprintf("case %d (%s %s %s %s %.40s)", i, c.verdict, c.rule, c.code, c.enh, c.text)
		k := w.to
		if c.stage() == stMail {
			k = w.from
		}
		sent := gmail.lastSent(k)
		banUnread := c.verdict == "ban" && c.stage() != stData
		var bounce bool
		switch c.verdict {
		case "ban", "block-domain":
			bounce = !banUnread
		case "none", "report":
			bounce = c.code[0] == '5'
		}
		if bounce {
			waitFor(10*time.Second, func() bool { return len(gm28DSNs(gmail, w.from)) > 0 })
		} else {
			time.Sleep(10 * time.Millisecond)
		}
		dsns := gm28DSNs(gmail, w.from)
		state := msgState(r.spool, ids[i])
		switch {
		case bounce && len(dsns) != 1:
			t.Errorf("%s: %d notices to the sender (message %s); want 1", name, len(dsns), state)
			continue
		case !bounce && len(dsns) != 0:
			t.Errorf("%s: %d notices to the sender; want none (message %s):\n%s", name, len(dsns), state, dsns[0].Data)
			continue
		case !bounce && c.verdict == "encapsulate":
			if len(gmail.copiesTo(w.to)) != 1 {
				t.Errorf("%s: %d encapsulated copies; want 1", name, len(gmail.copiesTo(w.to)))
			}
			continue
		case !bounce:
			if state != "ready" {
				t.Errorf("%s: message %s; want it kept queued", name, state)
			}
			continue
		}
		notices++
		data := string(dsns[0].Data)
		m := gm28DiagCode.FindStringSubmatch(data)
		if m == nil {
			t.Errorf("%s: no Diagnostic-Code in the notice:\n%s", name, data)
			continue
		}
		diag := strings.Join(strings.Fields(m[1]), " ")
		id := pfe3SessionID.FindString(sent)
		if id == "" || !strings.Contains(diag, id) || !strings.Contains(diag, strings.Fields(c.text)[len(strings.Fields(c.text))-1]) {
			t.Errorf("%s: Diagnostic-Code %q; want Gmail's reply whole, its id %s included", name, diag, id)
		}
		if s := gm28Status.FindStringSubmatch(data); s == nil || !strings.HasPrefix(s[1], "5.") {
			t.Errorf("%s: Status %v; want 5.x.x:\n%s", name, s, data)
		}
	}
	t.Logf("%d of %d replies bounced, each with one notice quoting it", notices, len(cases))
}
