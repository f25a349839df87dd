package deliver

import (
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/reply"
)

// TestGm27ProxyPace: a proxy's pace with its upstream pauses for Gmail's
// "too fast" replies (the destination's, the IP rate before the content,
// the account's quota), doubles on repeats up to MaxSuspend, starts again
// once the pause is long over, and is not set by a recipient's 4.2.1, a
// spam refusal after the content, or a success.
func TestGm27ProxyPace(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	newPace := func() *ProxyPace {
		return &ProxyPace{Verdicts: EngineVerdicts{Policy: enforce.Policy{Rules: enforce.DefaultRules()}},
			Options: PaceOptions{Suspend: time.Minute, MaxSuspend: 4 * time.Minute, QuotaWindow: 24 * time.Hour},
			Now:     func() time.Time { return now }}
	}
	rep := func(s string) reply.Reply {
		u, err := enforce.ParseReply(s)
		if err != nil {
			t.Fatal(err)
		}
		return u.Reply
	}
	later := rep("421 4.7.0 Try again later, closing connection. x1 - gsmtp")
	cases := []struct {
		stage, reply string
		want         time.Duration // 0: no pause
	}{
		{"greeting", "421 4.7.0 Try again later, closing connection. x1 - gsmtp", time.Minute},
		{"mail", "421 4.4.5 Server busy, try again later. x1 - gsmtp", time.Minute},
		{"rcpt", "421 4.7.28 Gmail has detected an unusual rate of email originating from your IP address 192.0.2.25. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. x1 - gsmtp", time.Minute},
		{"rcpt", "421 4.7.0 [192.0.2.25 15] Our system has detected an unusual rate of unsolicited mail originating from your IP address. To protect our users from spam, mail sent from your IP address has been temporarily rate limited. x1 - gsmtp", time.Minute},
		{"data", "550 5.4.5 Daily user sending limit exceeded. x1 - gsmtp", 24 * time.Hour},
		{"rcpt", "450 4.2.1 The user you are trying to contact is receiving mail too quickly. x1 - gsmtp", 0},
		{"data", "550 5.7.1 [192.0.2.25 12] Our system has detected that this message is likely unsolicited mail. x1 - gsmtp", 0},
		{"rcpt", "550 5.1.1 The email account that you tried to reach does not exist. x1 - gsmtp", 0},
		{"data", "250 2.0.0 OK x1 - gsmtp", 0},
	}
	for _, c := range cases {
		p := newPace()
		p.Signal(c.stage, rep(c.reply))
		until, _, paused := p.Paused()
		if got := until.Sub(now); paused != (c.want != 0) || paused && got != c.want {
			t.Errorf("after %s %q: Paused() = %v, %v; want a pause of %v", c.stage, c.reply, got, paused, c.want)
		}
	}
	p := newPace()
	for i, want := range []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 4 * time.Minute} {
		p.Signal("mail", later)
		if until, _, _ := p.Paused(); until.Sub(now) != want {
			t.Errorf("signal %d: paused for %v; want %v", i+1, until.Sub(now), want)
		}
	}
	now = now.Add(9 * time.Minute)
	if _, _, paused := p.Paused(); paused {
		t.Error("paused after the pause's end")
	}
	p.Signal("mail", later)
	if until, _, _ := p.Paused(); until.Sub(now) != time.Minute {
		t.Errorf("a signal long after the last pause: paused for %v; want 1m again", until.Sub(now))
	}
	var nilPace *ProxyPace
	if nilPace.Signal("mail", later) {
		t.Error("a nil ProxyPace paced")
	}
}
