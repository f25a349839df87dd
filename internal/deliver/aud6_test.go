package deliver

import (
	"context"
	"os"
	"regexp"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// unaddressingFilter is a client filter that removes every To-Remote line
// from the envelope and passes the message, as a script with sed may.
type unaddressingFilter struct{}

var toRemote = regexp.MustCompile(`(?m)^X-MailRelay-To-Remote: .*\r\n`)

func (unaddressingFilter) Run(_ context.Context, _, envelope string) filter.Result {
	b, err := os.ReadFile(envelope)
	if err != nil {
		return filter.Result{Outcome: filter.TempFail, Code: 451}
	}
	b = toRemote.ReplaceAll(b, nil)
	b = regexp.MustCompile(`(?m)^X-MailRelay-ToCount: \d+\r$`).ReplaceAll(b, []byte("X-MailRelay-ToCount: 0\r"))
	if err := os.WriteFile(envelope, b, 0o600); err != nil {
		return filter.Result{Outcome: filter.TempFail, Code: 451}
	}
	return filter.Result{Outcome: filter.OK}
}

func (unaddressingFilter) String() string { return "unaddressing" }

// TestAud6ClientFilterRemovesEveryRecipient: a client filter that removes
// every recipient and passes the message left a message nobody was sent
// to, which the scheduler took for delivered and removed without a line
// in any log. The check for "no remote recipients" (E-MailRelay fails such
// a message) ran only before the client filter; it runs after it too, so
// the message is failed with that reason, as the scheduler's own comment
// says it must be.
func TestAud6ClientFilterRemovesEveryRecipient(t *testing.T) {
	up := startUpstream(t)
	sp, s, _, id := setup(t, up.addr, "ok@example.net")
	s.opts.ClientFilter = unaddressingFilter{}
	sum, err := s.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Failed != 1 || sum.Sent != 0 {
		t.Errorf("RunOnce = %+v; want the message failed, not sent", sum)
	}
	env, st, err := sp.Read(id)
	if err != nil || st != spool.Failed || env.LastReply != "no remote recipients" {
		t.Errorf("after RunOnce: %v, %v; want it failed with \"no remote recipients\"", st, err)
	}
}
