package enforce

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// The seams, pinned: the scheduler kicks and the table set reloads are
// declared here and implemented elsewhere; these are the ones of this
// package.
var (
	_ Welcomer = (*Welcomelist)(nil)
	_ BanSink  = (*FileBans)(nil)
	_ BanSink  = (*SyslogBans)(nil)
	_ Clock    = realClock{}
)

// welcomeSet welcomes the addresses listed.
type welcomeSet map[netip.Addr]bool

func (w welcomeSet) Welcome(ip netip.Addr, _ string) bool { return w[ip] }

// srsSecret verifies only the SRS addresses it knows.
type srsSecret map[string]string

func (s srsSecret) Decode(addr string) (string, bool) {
	orig, ok := s[addr]
	return orig, ok
}

// TestDecideTrusted: a ban or a domain block is carried out only on the
// word of a trusted upstream (one named, or Google's); anyone else's
// refusal in Gmail's words is reported.
func TestDecideTrusted(t *testing.T) {
	const (
		unsolicited = "550-5.7.1 Our system has detected that this message is 550-5.7.1 likely unsolicited mail. 550 5.7.1 x1 - gsmtp"
		domainRep   = "550-5.7.1 Our system has detected that this message is likely suspicious due to the very low reputation of the sending domain. 550 5.7.1 x2 - gsmtp"
		spfDomain   = "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain [victim2.example 30]. 421 4.7.28 x3 - gsmtp"
	)
	p := Policy{Rules: DefaultRules(), TrustedUpstreams: []string{"smtp.Relay.example", "192.0.2.25", "[198.51.100.4]:2525"}}
	client := netip.MustParseAddr("203.0.113.7")
	tests := []struct {
		host string
		ok   bool
	}{
		{"gmail-smtp-in.l.google.com[142.250.153.27]:25", true},
		{"smtp.gmail.com:587", true},
		{"alt1.aspmx.l.GOOGLE.com.[142.250.1.1]", true},
		{"gmail.com", true},
		{"x.googlemail.com[192.0.2.9]:25", true},
		{"smtp.relay.example:25", true},
		{"SMTP.RELAY.EXAMPLE[203.0.113.99]:25", true},
		{"mx.other.example[192.0.2.25]:25", true}, // the address is named
		{"192.0.2.25:2525", true},
		{"[192.0.2.25]:25", true},
		{"198.51.100.4", true},
		{"mx.attacker.test[127.0.71.41]:25", false},
		{"google.com.attacker.test[192.0.2.8]:25", false},
		{"notgoogle.com[192.0.2.8]", false},
		{"attacker.test[142.250.153.27]", false}, // Google's address, not its name
		{"relay.example", false},
		{"127.0.0.1:25", false},
		{"", false},
	}
	for _, tt := range tests {
		if got := Trusted(tt.host, p.TrustedUpstreams); got != tt.ok {
			t.Errorf("Trusted(%q) = %v; want %v", tt.host, got, tt.ok)
		}
		for _, c := range []struct {
			reply string
			want  Action
		}{{unsolicited, Ban}, {domainRep, BlockDomain}, {spfDomain, BlockDomain}} {
			pl := Decide(p, Refusal{Client: client, From: "bob@victim2.example", To: []string{"x@attacker.test"},
				Upstream: Upstream{Reply: textReply(c.reply), Host: tt.host}})
			want := c.want
			if !tt.ok {
				want = Report
			}
			if pl.Action != want || pl.Verdict.Action != c.want {
				t.Errorf("%q, %.30s: Decide = %v (verdict %v); want %v", tt.host, c.reply, pl.Action, pl.Verdict.Action, want)
			}
			if !tt.ok && (pl.Client.IsValid() || pl.Domain != "" || !strings.Contains(pl.Why, "not a trusted upstream") && !strings.Contains(pl.Why, "unknown")) {
				t.Errorf("%q: plan %+v; want nobody named, why saying so", tt.host, pl)
			}
		}
	}
}

func TestDecide(t *testing.T) {
	const (
		unsolicited = "550-5.7.1 [192.0.2.25 12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. ... 550 5.7.1 x1 - gsmtp"
		domainRep   = "550-5.7.1 Our system has detected that this message is likely suspicious due to the very low reputation of the sending domain. 550 5.7.1 x2 - gsmtp"
		spfDomain   = "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain [spf.example 30]. 421 4.7.28 x3 - gsmtp"
		dmarc       = "550-5.7.26 Unauthenticated email from a.example is not accepted due to domain's DMARC policy. 550 5.7.26 x4 - gsmtp"
		dmarcDNS    = "451-4.7.26 Unauthenticated email from a.example is not accepted due to domain's DMARC policy, but temporary DNS failures prevent authentication. 451 4.7.26 x5 - gsmtp"
		dailyLimit  = "550 5.4.5 Daily user sending limit exceeded. x6 - gsmtp"
		rate        = "421-4.7.28 Gmail has detected an unusual rate of email originating from your IP address 192.0.2.25. 421 4.7.28 x7 - gsmtp"
		noUserEncap = "550 5.1.1 The email account that you tried to reach does not exist; likely unsolicited x8 - gsmtp"
	)
	client := netip.MustParseAddr("203.0.113.7")
	friend := netip.MustParseAddr("198.51.100.9")
	srs := "SRS0=abcd=XY=orig.example=bob@fwd.example"
	forged := "SRS0=zzzz=XY=gmail.com=bob@attacker.example"
	rules, err := ParseRules("test", []byte(DefaultRulesText()+"\nrule encap-recipient\n  action encapsulate\n  enhanced 5.1.1\n"))
	if err != nil {
		t.Fatal(err)
	}
	// Put the test rule first, so that 5.1.1 is encapsulated.
	rules.rules = append(rules.rules[len(rules.rules)-1:], rules.rules[:len(rules.rules)-1]...)
	p := Policy{Rules: rules, Filter: DefaultReplyFilter(), Welcome: welcomeSet{friend: true},
		NeverBlock: []string{"relay.example", "MX.Mail.Example.org."}, SRS: srsSecret{srs: "bob@orig.example"}}
	tests := []struct {
		name   string
		rf     Refusal
		action Action
		target string // client or domain
		why    string
		heard  int // the reply code the client hears once done
	}{
		{"ban", Refusal{Client: client, From: "a@b.example", Upstream: upstream(unsolicited)}, Ban, "203.0.113.7", "", 550},
		{"ban, welcomelisted", Refusal{Client: friend, Upstream: upstream(unsolicited)}, Encapsulate, "", "the client is on the welcomelist", 250},
		{"ban, local pickup", Refusal{Local: true, From: "a@b.example", Upstream: upstream(unsolicited)}, Encapsulate, "", "submitted locally", 250},
		{"ban, the relay's own notice", Refusal{Local: true, Own: true, Upstream: upstream(unsolicited)}, Report, "", "the relay's own message (a notice): never acted on", 550},
		{"ban, a local null sender (Postfix's notice)", Refusal{Local: true, Upstream: upstream(unsolicited)}, Report, "", "the relay's own message (a notice): never acted on", 550},
		{"ban, a double bounce", Refusal{Local: true, Own: true, From: "double-bounce@relay.example", Upstream: upstream(unsolicited)}, Report, "", "the relay's own message (a notice): never acted on", 550},
		{"ban, a client's null sender", Refusal{Client: client, Upstream: upstream(unsolicited)}, Ban, "203.0.113.7", "", 550},
		{"ban, client unknown", Refusal{Upstream: upstream(unsolicited)}, Report, "", "the client is unknown", 550},
		{"block, sender domain", Refusal{Client: client, From: "a@Sub.Bad.Example", Upstream: upstream(domainRep)}, BlockDomain, "sub.bad.example", "", 550},
		{"block, the reply's domain", Refusal{Client: client, From: "a@Mail.Spf.example", Upstream: upstream(spfDomain)}, BlockDomain, "spf.example", "", 554},
		{"block, the reply's domain, not the sender's", Refusal{Client: client, From: "a@b.example", Upstream: upstream(spfDomain)}, Report, "",
			"the upstream names spf.example, not the envelope sender's domain: blocking it would refuse spf.example's own mail, not this sender's", 554},
		{"block, verified SRS", Refusal{Client: client, From: srs, Upstream: upstream(domainRep)}, BlockDomain, "orig.example", "", 550},
		{"block, forged SRS", Refusal{Client: client, From: forged, Upstream: upstream(domainRep)}, BlockDomain, "attacker.example", "", 550},
		{"block, never blocked", Refusal{Client: client, From: "x@mx.relay.example", Upstream: upstream(domainRep)}, Report, "", "the domain mx.relay.example is never blocked", 550},
		{"block, null sender", Refusal{Client: client, Upstream: upstream(domainRep)}, Report, "", "no sender domain to block", 550},
		{"block, a public suffix", Refusal{Client: client, From: "a@Co.UK", Upstream: upstream(domainRep)}, Report, "", "the domain co.uk is a public suffix: blocking it blocks every domain under it", 550},
		{"block, a private public suffix", Refusal{Client: client, From: "a@github.io", Upstream: upstream(domainRep)}, Report, "", "the domain github.io is a public suffix: blocking it blocks every domain under it", 550},
		{"block, a domain under a public suffix", Refusal{Client: client, From: "a@bad.co.uk", Upstream: upstream(domainRep)}, BlockDomain, "bad.co.uk", "", 550},
		{"block, a parent of a never-blocked domain", Refusal{Client: client, From: "a@mail.example.org", Upstream: upstream(domainRep)}, Report, "", "blocking mail.example.org blocks mx.mail.example.org, which is never blocked", 550},
		{"block, client unknown", Refusal{From: "a@b.example", Upstream: upstream(domainRep)}, Report, "", "the client is unknown", 550},
		{"block, the reply's domain, client unknown", Refusal{From: "a@b.example", Upstream: upstream(spfDomain)}, Report, "", "the client is unknown", 554},
		{"block, welcomelisted", Refusal{Client: friend, From: "a@b.example", Upstream: upstream(domainRep)}, Encapsulate, "", "the client is on the welcomelist", 250},
		{"encapsulate", Refusal{Client: client, Upstream: upstream(dmarc)}, Encapsulate, "", "", 250},
		{"encapsulate, recipient problem", Refusal{Client: client, Upstream: upstream(noUserEncap)}, Report, "", "a recipient problem is never encapsulated", 550},
		{"DMARC, DNS failed", Refusal{Client: client, Upstream: upstream(dmarcDNS)}, None, "", "", 451},
		{"alert keeps the mail", Refusal{Client: client, Upstream: upstream(dailyLimit)}, Alert, "", "", 451},
		{"pace", Refusal{Client: client, Upstream: upstream(rate)}, Pace, "", "", 421},
	}
	for _, tt := range tests {
		u, err := ParseReply(tt.rf.Reply.String())
		if err != nil {
			t.Fatal(err)
		}
		tt.rf.Reply = u.Reply
		tt.rf.To = []string{"u@gmail.test"}
		tt.rf.Host = "gmail-smtp-in.l.google.com[142.250.153.27]:25"
		pl := Decide(p, tt.rf)
		target := pl.Domain
		if pl.Client.IsValid() {
			target = pl.Client.String()
		}
		if pl.Action != tt.action || target != tt.target || pl.Why != tt.why || pl.Heard.Code != tt.heard {
			t.Errorf("%s: Decide = %v %q why %q, heard %d; want %v %q why %q, heard %d",
				tt.name, pl.Action, target, pl.Why, pl.Heard.Code, tt.action, tt.target, tt.why, tt.heard)
		}
		// The same refusal again (a retry, another session id) is not
		// acted on twice.
		again := tt.rf
		again.Reply = textReply(strings.Replace(again.Reply.String(), " x", " y", 1))
		again.Done = []string{pl.Key}
		pl2 := Decide(p, again)
		if !pl2.Repeat || pl2.Action != None {
			t.Errorf("%s: Decide again = %v, repeat %v; want none, a repeat", tt.name, pl2.Action, pl2.Repeat)
		}
		if tt.action.KeepsMail() && pl2.Heard.Code != tt.heard {
			t.Errorf("%s: Decide again: heard %d; want %d (the mail is still kept)", tt.name, pl2.Heard.Code, tt.heard)
		}
	}
}

func TestSenderDomainSRS(t *testing.T) {
	dec := srsSecret{"SRS0=HHH=TT=example.org=alice@relay.example": "alice@example.org",
		"srs1=HHH=fwd.example==HHH=TT=orig.example=bob@x.example": "bob@orig.example"}
	for _, tt := range []struct {
		from string
		srs  SRSDecoder
		want string
	}{
		{"alice@Example.COM", nil, "example.com"},
		{"", nil, ""},
		{"SRS0=HHH=TT=example.org=alice@relay.example", dec, "example.org"},
		{"srs1=HHH=fwd.example==HHH=TT=orig.example=bob@x.example", dec, "orig.example"},
		// Unverified: the forwarder's own domain, never the one written in it.
		{"SRS0=HHH=TT=example.org=alice@relay.example", nil, "relay.example"},
		{"SRS0=abcd=XY=gmail.com=bob@attacker.example", dec, "attacker.example"},
	} {
		if got := SenderDomain(tt.from, tt.srs); got != tt.want {
			t.Errorf("SenderDomain(%q) = %q; want %q", tt.from, got, tt.want)
		}
	}
	for enh, want := range map[string]bool{"5.1.1": true, "4.2.2": true, "5.1.7": false, "5.7.26": false, "": false} {
		if got := recipientProblem(enh); got != want {
			t.Errorf("recipientProblem(%q) = %v; want %v", enh, got, want)
		}
	}
}

func TestAlertLimiter(t *testing.T) {
	var l AlertLimiter
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for _, s := range []struct {
		cause string
		at    time.Duration
		want  bool
	}{{"ptr", 0, true}, {"ptr", time.Minute, false}, {"tls", time.Minute, true}, {"ptr", 59 * time.Minute, false}, {"ptr", 61 * time.Minute, true}} {
		if got := l.Due(s.cause, t0.Add(s.at)); got != s.want {
			t.Errorf("Due(%s, +%v) = %v; want %v", s.cause, s.at, got, s.want)
		}
	}
}

// lineSink keeps the ban lines.
type lineSink struct {
	mu    sync.Mutex
	lines []string
}

func (s *lineSink) WriteBan(line string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lines = append(s.lines, line)
	return nil
}

func (s *lineSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.lines)
}

// TestBanWriter: a ban's lines are written when it takes effect, not
// before; a stop within the delay writes those still waiting at once.
func TestBanWriter(t *testing.T) {
	clock := newFakeClock()
	sink := &lineSink{}
	var ml strings.Builder
	var mlMu sync.Mutex
	w := NewBanWriter(sink, maillog.New(lockedWriter{&mlMu, &ml}), clock, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	ip1, ip2 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("203.0.113.2")
	w.Add(clock.Now().Add(10*time.Second), BanEvent{Client: ip1, Reason: "r1", Until: clock.Now().Add(4 * time.Hour), Rule: "x"})
	w.Add(clock.Now().Add(20*time.Second), BanEvent{Client: ip2, Reason: "r2", Until: clock.Now().Add(4 * time.Hour), Rule: "y"})
	wait := func(n int) bool {
		for i := 0; i < 200 && sink.count() != n; i++ {
			time.Sleep(5 * time.Millisecond)
		}
		return sink.count() == n
	}
	clock.Advance(9 * time.Second)
	if wait(1) {
		t.Fatalf("a ban line was written before its ban took effect: %q", sink.lines)
	}
	clock.Advance(time.Second)
	if !wait(1) {
		t.Fatalf("%d ban lines once the first ban took effect; want 1", sink.count())
	}
	cancel() // stop within the second ban's delay
	<-done
	if sink.count() != 2 || w.Pending() != 0 {
		t.Fatalf("after stop: %d lines, %d pending; want 2, 0", sink.count(), w.Pending())
	}
	if want := "bannable r2 203.0.113.2"; sink.lines[1] != want {
		t.Errorf("ban line %q; want %q", sink.lines[1], want)
	}
	mlMu.Lock()
	defer mlMu.Unlock()
	if !strings.Contains(ml.String(), ` ban client=203.0.113.1 prefix=203.0.113.1/32 id="" until=2026-11-22T14:00:00Z rule=x `) {
		t.Errorf("mail log:\n%s\nwant the documented ban line", ml.String())
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
