package e2e

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestGm11EveryReplyAtMailAndRcpt: every reply of gmail-replies.md given
// by the fake Gmail in reply to MAIL FROM, then to RCPT TO, instead of
// where Gmail usually gives it, to a relay that stores and forwards and to
// a proxy, welcomelisted or not (TestRevPFE3RelayEveryReply's checks):
// each gets its verdict's action there too, the relay storing and
// forwarding still has the message to encapsulate, and a proxy, which has
// none yet, reports instead of encapsulating; a welcomelisted client is
// never banned or blocked.
func TestGm11EveryReplyAtMailAndRcpt(t *testing.T) {
	t.Parallel()
	for _, st := range []harness.Stage{stMail, stRcpt} {
		t.Run(st.String(), func(t *testing.T) {
			t.Parallel()
			cases := pfe3Replies(t)
			for i := range cases {
				cases[i].at, cases[i].atSet = st, true
			}
			relayEveryReply(t, cases)
		})
	}
}

// TestGm11ProxyGreetingRefusals: the upstream refusing a proxy at its
// greeting with each reply of gmail-replies.md in turn: no message was
// read, so nobody is banned, blocked, spared or encapsulated, and every
// client hears a temporary refusal at MAIL FROM (a 5xx greeting as
// "454 4.7.0 upstream greeting failed", as Postfix skips a server that
// greets with 5xx), never a permanent one for its mail.
func TestGm11ProxyGreetingRefusals(t *testing.T) {
	t.Parallel()
	cases := pfe3Replies(t)
	var mu sync.Mutex
	n := 0
	fake := harness.NewFakeSMTP(t, harness.Script{Decide: func(st harness.Stage, tx harness.Transaction, arg string) harness.Response {
		if st != harness.StageConnect {
			return harness.Response{}
		}
		mu.Lock()
		defer mu.Unlock()
		c := cases[n%len(cases)]
		n++
		return harness.Response{Fault: harness.Close421, Reply: strings.ReplaceAll(c.reply(n, "a@greet.example"), "{id}", fmt.Sprintf("g%dsi1", n))}
	}})
	r := startEnforcer(t, fake.Addr(), enforceOpts{proxy: true})
	for i, c := range cases {
		from := fmt.Sprintf("a%d@gm11p%d.example", i, i)
		tx, err := sendFrom(r.addr(), fmt.Sprintf("127.0.3.%d", 10+i), from, []string{fmt.Sprintf("b%d@gmail.test", i)}, gmailMessage(from, fmt.Sprint("greeting ", i)))
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		if h := heardReply(tx); h.code()/100 != 4 {
			t.Errorf("case %d (%s %s %s %s at the greeting): the client heard %q; want a temporary refusal", i, c.verdict, c.rule, c.code, c.enh, h)
		}
	}
	time.Sleep(500 * time.Millisecond) // a late event would show now
	for _, ev := range []string{"ban", "block", "encapsulate", "spare"} {
		for _, e := range r.events(ev) {
			t.Errorf("a refusal at the greeting: %s line %v; want none", ev, e.Fields)
		}
	}
}
