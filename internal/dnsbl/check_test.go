package dnsbl

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/miekg/dns"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// The test lists: 192.0.2.1 is listed in a, b and c; 192.0.2.2 in a only;
// 192.0.2.3 nowhere.
const testZone = `
1.2.0.192.a.example. A   127.0.0.2
1.2.0.192.a.example. A   127.0.0.4
1.2.0.192.a.example. TXT "listed in a, see https://a.example/?192.0.2.1"
1.2.0.192.b.example. A   127.0.0.3
1.2.0.192.c.example. A   127.0.0.10
2.2.0.192.a.example. A   127.0.0.2
`

func checker(t *testing.T, dns *harness.DNSServer, threshold int, timeout time.Duration, specs ...string) *Checker {
	t.Helper()
	cfg := Config{Threshold: threshold, Timeout: timeout, Server: dns.Addr()}
	for _, s := range specs {
		z, err := ParseRBLSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Zones = append(cfg.Zones, z)
	}
	return New(cfg)
}

func check(t *testing.T, c *Checker, ip string) Result {
	t.Helper()
	res, err := c.Check(context.Background(), netip.MustParseAddr(ip))
	if err != nil {
		t.Fatalf("Check(%s): %v", ip, err)
	}
	return res
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

var cmpAddr = cmp.Comparer(func(a, b netip.Addr) bool { return a == b })

func TestCheckListed(t *testing.T) {
	srv := harness.StartDNS(t, testZone)
	c := checker(t, srv, 1, 5*time.Second, "a.example")

	got := check(t, c, "192.0.2.1")
	want := Result{Listed: true, Hits: []Hit{{Zone: "a.example", Codes: addrs("127.0.0.2", "127.0.0.4"),
		Text: "listed in a, see https://a.example/?192.0.2.1"}}}
	if diff := cmp.Diff(want, got, cmpAddr); diff != "" {
		t.Errorf("Check(listed) mismatch (-want +got):\n%s", diff)
	}
	if got, want := got.RejectText(netip.MustParseAddr("192.0.2.1")),
		"Service unavailable; Client host [192.0.2.1] blocked using a.example; listed in a, see https://a.example/?192.0.2.1"; got != want {
		t.Errorf("RejectText = %q; want %q", got, want)
	}

	if got := check(t, c, "192.0.2.3"); got.Listed || len(got.Hits) != 0 || got.TimedOut || len(got.Failures) != 0 {
		t.Errorf("Check(not listed) = %+v; want nothing", got)
	}
	// An IPv4-mapped IPv6 address is looked up as IPv4.
	if got := check(t, c, "::ffff:192.0.2.1"); !got.Listed {
		t.Errorf("Check(::ffff:192.0.2.1) = %+v; want listed", got)
	}
}

func TestCheckIgnoredAnswers(t *testing.T) {
	srv := harness.StartDNS(t, `
5.2.0.192.a.example. A 127.255.255.254
6.2.0.192.a.example. A 10.0.0.2
7.2.0.192.a.example. A 127.255.255.252
7.2.0.192.a.example. A 127.0.0.2
`)
	c := checker(t, srv, 1, 5*time.Second, "a.example")
	got := check(t, c, "192.0.2.5")
	if got.Listed || got.TimedOut || len(got.Failures) != 1 || got.Failures[0].NoAnswer {
		t.Errorf("Check(127.255.255.254 answer) = %+v; want not listed, one failure (an error answer)", got)
	}
	if got := check(t, c, "192.0.2.6"); got.Listed || len(got.Failures) != 0 {
		t.Errorf("Check(10.0.0.2 answer) = %+v; want not listed", got)
	}
	if got := check(t, c, "192.0.2.7"); !got.Listed || !cmp.Equal(got.Hits[0].Codes, addrs("127.0.0.2"), cmpAddr) {
		t.Errorf("Check(127.0.0.2 and an error code) = %+v; want listed by 127.0.0.2 only", got)
	}

	srv.SetRcode("3.2.0.192.a.example", dns.RcodeServerFailure)
	if got := check(t, c, "192.0.2.3"); got.Listed || got.TimedOut || len(got.Failures) != 1 {
		t.Errorf("Check(SERVFAIL) = %+v; want not listed, one failure", got)
	}
}

func TestCheckThreshold(t *testing.T) {
	srv := harness.StartDNS(t, testZone)
	c := checker(t, srv, 2, 5*time.Second, "a.example", "b.example", "c.example")
	if got := check(t, c, "192.0.2.1"); !got.Listed || len(got.Hits) < 2 {
		t.Errorf("Check(in 3 of 3, threshold 2) = %+v; want listed", got)
	}
	// Once b and c have answered "no", a's answer cannot matter and Check
	// may return without it.
	if got := check(t, c, "192.0.2.2"); got.Listed || len(got.Hits) > 1 || got.TimedOut {
		t.Errorf("Check(in 1 of 3, threshold 2) = %+v; want not listed", got)
	}

	// Threshold 0: consult and log only.
	c = checker(t, srv, 0, 5*time.Second, "a.example", "b.example", "c.example")
	got := check(t, c, "192.0.2.1")
	if got.Listed || len(got.Hits) != 3 {
		t.Errorf("Check(threshold 0) = %+v; want not listed, three hits", got)
	}
	if diff := cmp.Diff([]string{"a.example", "b.example", "c.example"}, hitZones(got)); diff != "" {
		t.Errorf("hits not in Config order (-want +got):\n%s", diff)
	}
}

func hitZones(r Result) []string {
	var out []string
	for _, h := range r.Hits {
		out = append(out, h.Zone)
	}
	return out
}

func TestCheckTimeout(t *testing.T) {
	srv := harness.StartDNS(t, testZone)
	srv.SetDrop(".")
	const timeout = 300 * time.Millisecond
	for _, failClosed := range []bool{false, true} {
		c := checker(t, srv, 1, timeout, "a.example", "b.example")
		c.cfg.FailClosed = failClosed
		start := time.Now()
		got := check(t, c, "192.0.2.1")
		if elapsed := time.Since(start); elapsed < timeout || elapsed > 3*time.Second {
			t.Errorf("Check with a silent server took %v; want about %v", elapsed, timeout)
		}
		if got.Listed != failClosed || !got.TimedOut || len(got.Failures) != 2 || !got.Failures[0].NoAnswer {
			t.Errorf("Check(FailClosed %v, silent server) = %+v; want Listed %v, TimedOut, 2 failures", failClosed, got, failClosed)
		}
		if failClosed {
			want := "Service unavailable; Client host [192.0.2.1] blocked: no answer from a.example, b.example"
			if text := got.RejectText(netip.MustParseAddr("192.0.2.1")); text != want {
				t.Errorf("RejectText = %q; want %q", text, want)
			}
		}
	}
	if n := srv.Queries(); n < 4 {
		t.Errorf("server saw %d queries; want at least 4", n)
	}

	// One silent zone does not delay a listing by another.
	srv.SetDrop("b.example")
	c := checker(t, srv, 1, 5*time.Second, "a.example", "b.example")
	start := time.Now()
	if got := check(t, c, "192.0.2.1"); !got.Listed || got.TimedOut {
		t.Errorf("Check(a lists, b silent) = %+v; want listed", got)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Check(a lists, b silent) took %v; want an early answer", elapsed)
	}
	// ...but it does decide a threshold it could reach, and a threshold it
	// cannot reach is not a timeout.
	c = checker(t, srv, 2, timeout, "a.example", "b.example")
	c.cfg.FailClosed = true
	if got := check(t, c, "192.0.2.1"); !got.Listed || !got.TimedOut || len(got.Hits) != 1 {
		t.Errorf("Check(threshold 2, a lists, b silent, fail closed) = %+v; want listed by timeout", got)
	}
	c = checker(t, srv, 3, timeout, "a.example", "b.example")
	c.cfg.FailClosed = true
	if got := check(t, c, "192.0.2.1"); got.Listed || got.TimedOut {
		t.Errorf("Check(threshold 3 of 2 zones) = %+v; want not listed, not timed out", got)
	}
}

func TestCheckTextTimeout(t *testing.T) {
	// A list that answers A but never TXT still lists the client, once the
	// timeout has passed.
	srv := harness.StartDNS(t, testZone)
	srv.SetDropFunc(func(name, qtype string) bool { return qtype == "TXT" })
	c := checker(t, srv, 1, 300*time.Millisecond, "a.example")
	c.cfg.FailClosed = false
	got := check(t, c, "192.0.2.1")
	if !got.Listed || got.TimedOut || len(got.Hits) != 1 || got.Hits[0].Text != "" || len(got.Failures) != 0 {
		t.Errorf("Check(A but no TXT) = %+v; want listed without text", got)
	}
}

func TestCheckServerUnreachable(t *testing.T) {
	// Nothing listens on this UDP port any more: the kernel answers "port
	// unreachable", which is no answer.
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	c := New(Config{Zones: []Zone{{Name: "a.example"}}, Threshold: 1, Timeout: 300 * time.Millisecond, Server: addr, FailClosed: true})
	got := check(t, c, "192.0.2.1")
	if !got.Listed || !got.TimedOut {
		t.Errorf("Check with no server, fail closed = %+v; want listed by timeout", got)
	}
}

func TestCheckFilters(t *testing.T) {
	srv := harness.StartDNS(t, `
1.2.0.192.zen.example. A 127.0.0.4
2.2.0.192.zen.example. A 127.0.0.12
`)
	c := checker(t, srv, 1, 5*time.Second, "zen.example=127.0.0.[2..11]")
	if got := check(t, c, "192.0.2.1"); !got.Listed {
		t.Errorf("Check(127.0.0.4 with filter [2..11]) = %+v; want listed", got)
	}
	if got := check(t, c, "192.0.2.2"); got.Listed {
		t.Errorf("Check(127.0.0.12 with filter [2..11]) = %+v; want not listed", got)
	}
}

func TestCheckIPv6(t *testing.T) {
	srv := harness.StartDNS(t, "")
	ip := netip.MustParseAddr("2001:db8::1")
	srv.Set(queryName(ip, "v6.example"), "A", "127.0.0.2")
	srv.Set(queryName(ip, "v6.example"), "TXT", "v6 listed")
	c := checker(t, srv, 1, 5*time.Second, "v6.example")
	got := check(t, c, "2001:db8::1")
	if !got.Listed || got.Hits[0].Text != "v6 listed" {
		t.Errorf("Check(2001:db8::1) = %+v; want listed with text", got)
	}
	if q := srv.Questions()[0]; q != "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.v6.example. A" {
		t.Errorf("question = %q", q)
	}
	if got := check(t, c, "2001:db8::2"); got.Listed {
		t.Errorf("Check(2001:db8::2) = %+v; want not listed", got)
	}
}

func TestCheckLongTXT(t *testing.T) {
	srv := harness.StartDNS(t, "1.2.0.192.a.example. A 127.0.0.2")
	long := strings.Repeat("very long explanation ", 40)
	srv.Set("1.2.0.192.a.example", "TXT", long, "second \"record\"")
	c := checker(t, srv, 1, 5*time.Second, "a.example")
	got := check(t, c, "192.0.2.1")
	if len(got.Hits) != 1 || got.Hits[0].Text != long+`; second "record"` {
		t.Errorf("Check(long TXT) text = %q", got.Hits)
	}
}

func TestCheckContextCanceled(t *testing.T) {
	srv := harness.StartDNS(t, testZone)
	srv.SetDrop(".")
	c := checker(t, srv, 1, 5*time.Second, "a.example")
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if got, err := c.Check(ctx, netip.MustParseAddr("192.0.2.1")); err == nil {
		t.Errorf("Check with a canceled context = %+v; want an error", got)
	}
	if _, err := c.Check(context.Background(), netip.Addr{}); err == nil {
		t.Error("Check(invalid address) succeeded; want an error")
	}
}

func TestNewDefaultServer(t *testing.T) {
	c := New(Config{})
	if _, err := netip.ParseAddrPort(c.Server()); err != nil {
		t.Errorf("default Server() = %q; want ip:port", c.Server())
	}
}
