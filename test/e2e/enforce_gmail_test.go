package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// gmailResult is what happened to one case, in both modes.
type gmailResult struct {
	sfAction, pxAction string
	heard              reply
	heardHow           string // unchanged, rewritten
	outcome            string
}

// TestEnforceGmailReplies: each of Gmail's replies in gmail-replies.md,
// given per recipient by a fake Gmail, gets its action (the mail-log event
// about the client, with the right rule), the client of a proxy hears what
// the built-in reply filter makes of it, and in store-and-forward mode the
// original message is delivered, forwarded encapsulated, bounced or left
// deferred. Every case has a client address of its own, so a ban or a
// domain block touches no other case.
func TestEnforceGmailReplies(t *testing.T) {
	t.Parallel()
	cases := gmailCases()
	sfGmail, pxGmail := newFakeGmail(t), newFakeGmail(t)
	type who struct{ ip, from, to string }
	sfWho := func(i int) who {
		return who{fmt.Sprintf("127.0.1.%d", 10+i), fmt.Sprintf("s%d@case%d.example", i, i), fmt.Sprintf("r%d@gmail.test", i)}
	}
	pxWho := func(i int) who {
		return who{fmt.Sprintf("127.0.2.%d", 10+i), fmt.Sprintf("p%d@pcase%d.example", i, i), fmt.Sprintf("p%d@gmail.test", i)}
	}
	key := func(c gmailCase, w who) string {
		if c.stage == stMail {
			return w.from
		}
		return w.to
	}
	for i, c := range cases {
		sfGmail.answer(key(c, sfWho(i)), c.stage, c.reply)
		pxGmail.answer(key(c, pxWho(i)), c.stage, c.reply)
	}
	// Deferred messages must stay put for the test: no retry for a minute.
	// A pace or quota reply must not hold up the cases after it: the
	// destination's pause is cut to almost nothing (the deliver tests show
	// the pause itself).
	cfg := "[enforce]\nban_delay = \"0s\"\n[delivery]\nminimal_backoff_time = \"60s\"\nmaximal_backoff_time = \"60s\"\n" +
		"pace_suspend = \"1ms\"\npace_max_suspend = \"1ms\"\npace_delay = \"1ms\"\npace_max_delay = \"1ms\"\nquota_window = \"1ms\"\n"
	sf := startEnforcer(t, sfGmail.Addr(), enforceOpts{config: cfg})
	// The proxy pauses for the pace too (its next client, within the
	// pause, is refused without a session): to no time at all.
	px := startEnforcer(t, pxGmail.Addr(), enforceOpts{config: strings.ReplaceAll(cfg, `"1ms"`, `"1ns"`), proxy: true})
	results := make([]gmailResult, len(cases))

	// Proxy: what the client hears and what the enforcer does.
	for i, c := range cases {
		w := pxWho(i)
		tx, err := sendFrom(px.addr(), w.ip, w.from, []string{w.to}, gmailMessage(w.from, fmt.Sprintf("proxy case %d", i)))
		if err != nil {
			t.Fatalf("%s: proxy send: %v (%+v)", c.name, err, tx)
		}
		got := heardReply(tx)
		sent := pxGmail.lastSent(key(c, w))
		var want reply
		switch c.heard {
		case "":
			want = replyLines(sent)
			results[i].heardHow = "unchanged"
		case "554":
			want = permanentHeard(sent)
			results[i].heardHow = "rewritten"
		case "451":
			want = temporaryHeard(sent)
			results[i].heardHow = "made temporary"
		default:
			want = reply{c.heard}
			results[i].heardHow = "rewritten"
		}
		results[i].heard = got
		if sent == "" || !slices.Equal(got, want) {
			t.Errorf("%s: proxy client heard %q; want %q (Gmail said %q)", c.name, got, want, sent)
		}
	}
	// Store-and-forward: every message forwarded alone, one after the other.
	ids := make([]string, len(cases))
	for i, c := range cases {
		w := sfWho(i)
		tx, err := sendFrom(sf.addr(), w.ip, w.from, []string{w.to}, gmailMessage(w.from, fmt.Sprintf("case %d", i)))
		if err != nil || tx.Final.code() != 250 {
			t.Fatalf("%s: store: %v; %+v", c.name, err, tx)
		}
		ids[i] = queuedID(t, tx.Final)
		sf.waitEvent("delivery", 10*time.Second, func(e *maillog.Entry) bool { return e.Get("id") == ids[i] })
	}
	// Every message out of a forwarder's hands, every copy delivered.
	settled := func() bool {
		for i, id := range ids {
			if s := msgState(sf.spool, id); s == "claimed" || s == "new" {
				return false
			}
			if cases[i].outcome == "encapsulated" && len(sfGmail.copiesTo(sfWho(i).to)) == 0 {
				return false
			}
		}
		for i, c := range cases {
			if c.heard != "" && strings.HasPrefix(c.heard, "250") && len(pxGmail.copiesTo(pxWho(i).to)) == 0 {
				return false
			}
		}
		return true
	}
	if !waitFor(15*time.Second, settled) {
		t.Errorf("messages not settled after 15s: states %v", func() []string {
			var s []string
			for _, id := range ids {
				s = append(s, id+"="+msgState(sf.spool, id))
			}
			return s
		}())
	}
	time.Sleep(300 * time.Millisecond) // a late event would show now

	for i, c := range cases {
		res := &results[i]
		sw, pw := sfWho(i), pxWho(i)
		res.sfAction = actionOf(enforceEvents(sf, sw.ip))
		res.pxAction = actionOf(enforceEvents(px, pw.ip))
		wantPx := c.action
		if c.proxyAction != "" {
			wantPx = c.proxyAction
		}
		if res.sfAction != c.action {
			t.Errorf("%s: store-and-forward action %s; want %s (events %v)", c.name, res.sfAction, c.action, fieldsOf(enforceEvents(sf, sw.ip)))
		} else if es := enforceEvents(sf, sw.ip); len(es) == 1 && (es[0].Get("rule") != c.rule || es[0].Get("id") != ids[i] && es[0].Get("orig") != ids[i]) {
			t.Errorf("%s: store-and-forward %s line %v; want rule=%q and the message's id %s", c.name, es[0].Event, es[0].Fields, c.rule, ids[i])
		}
		if res.pxAction != wantPx {
			t.Errorf("%s: proxy action %s; want %s (events %v)", c.name, res.pxAction, wantPx, fieldsOf(enforceEvents(px, pw.ip)))
		} else if es := enforceEvents(px, pw.ip); len(es) == 1 && es[0].Get("rule") != c.rule {
			t.Errorf("%s: proxy %s line %v; want rule=%q", c.name, es[0].Event, es[0].Fields, c.rule)
		}
		switch msgState(sf.spool, ids[i]) {
		case "gone":
			res.outcome = "delivered"
			if len(eventsWith(sf, "encapsulate", "orig", ids[i])) > 0 {
				res.outcome = "encapsulated"
			}
		case "failed":
			res.outcome = "bounced"
		case "held":
			res.outcome = "held"
		case "ready":
			res.outcome = "deferred"
		default:
			res.outcome = msgState(sf.spool, ids[i])
		}
		if res.outcome != c.outcome {
			t.Errorf("%s: store-and-forward message %s %s; want %s", c.name, ids[i], res.outcome, c.outcome)
		}
		if c.outcome == "encapsulated" {
			if n := len(sfGmail.copiesTo(sw.to)); n != 1 {
				t.Errorf("%s: Gmail accepted %d encapsulated copies to %s; want 1", c.name, n, sw.to)
			}
		}
		if c.outcome == "delivered" {
			if n := len(sfGmail.txs(func(tx hTx) bool { return tx.Accepted() && tx.MailFrom == sw.from })); n != 1 {
				t.Errorf("%s: Gmail accepted %d messages from %s; want 1", c.name, n, sw.from)
			}
		}
	}

	var b strings.Builder
	fmt.Fprintf(&b, "\n%-42s | %-22s | %-62s | %s\n", "Gmail's reply", "action (s&f / proxy)", "client hears (proxy)", "message (s&f)")
	for i, c := range cases {
		res := results[i]
		act := res.sfAction
		if res.pxAction != res.sfAction {
			act += " / " + res.pxAction
		}
		h := ""
		if len(res.heard) > 0 {
			h = res.heard[0]
		}
		if len(h) > 48 {
			h = h[:48] + "..."
		}
		fmt.Fprintf(&b, "%-42s | %-22s | %-62s | %s\n", c.name, act, h+" ("+res.heardHow+")", res.outcome)
	}
	t.Log(b.String())
}

// fieldsOf shows mail-log lines for a failure message.
func fieldsOf(es []*maillog.Entry) []string {
	var out []string
	for _, e := range es {
		out = append(out, e.Event+" "+fmt.Sprint(e.Fields))
	}
	return out
}
