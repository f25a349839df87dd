package route

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// writeFile writes a table file into dir and returns its path.
func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// guideTransports are the master.cf transports of the seed guide ("Local
// mail relay with Postfix"), with documentation addresses where the guide
// left its addresses out.
func guideTransports() map[string]*Transport {
	return map[string]*Transport{
		// out_default unix - - n - - smtp -o smtp_bind_address=...
		//   -o smtp_helo_name=relay.zombig.name -o syslog_name=relay-zombig-name
		"out_default": {BindAddress: "198.51.100.2", HeloName: "relay.zombig.name", LogName: "relay-zombig-name"},
		"zombig_name": {BindAddress: "198.51.100.3", HeloName: "relay.zombig.name", LogName: "relay-zombig-name"},
		// qq_com_limit_destination_concurrency_limit = 2, _rate_delay = 10s,
		// _recipient_limit = 3
		"qq_com_limit": {ConcurrencyLimit: 2, RateDelay: 10 * time.Second, RecipientLimit: 3},
	}
}

// want is what a test expects of a Route: the transport's name and the
// fields that matter.
type want struct {
	Transport string
	NextHop   string
	MX        bool
	Port      int
	Key       string
	Error     string
}

func got(rt Route) want {
	w := want{NextHop: rt.NextHop, MX: rt.MX, Port: rt.Port, Key: rt.Key, Error: rt.Error}
	if rt.Transport != nil {
		w.Transport = rt.Transport.Name
	}
	return w
}

// mx is a route to a domain by MX through transport.
func mx(transport, domain string) want {
	return want{Transport: transport, NextHop: domain, MX: true, Port: 25, Key: transport + "/" + domain}
}

type routeCase struct {
	sender, rcpt string
	want         want
}

func checkRoutes(t *testing.T, r *Router, cases []routeCase) {
	t.Helper()
	for _, c := range cases {
		if diff := cmp.Diff(c.want, got(r.Route(c.sender, c.rcpt))); diff != "" {
			t.Errorf("Route(%q, %q) mismatch (-want +got):\n%s", c.sender, c.rcpt, diff)
		}
	}
}

func newRouter(t *testing.T, opts Options) *Router {
	t.Helper()
	r, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return r
}

// TestGuide routes mail with the seed guide's tables, written in its own
// format, at each step of the guide.
func TestGuide(t *testing.T) {
	dir := t.TempDir()
	// "Besides that you need to define default transport."
	step1 := writeFile(t, dir, "transport_maps.step1", "* out_default:\n")
	// "Then create transport map for this domain." (appended, with the
	// guide's trailing blanks)
	transportMaps := writeFile(t, dir, "transport_maps", "* out_default:\nqq.com qq_com_limit:  \n")
	senderMaps := writeFile(t, dir, "sender_dependet_transpors", "@zombig.name zombig_name\n")

	t.Run("custom transport", func(t *testing.T) {
		r := newRouter(t, Options{Transports: guideTransports(), TransportMaps: []string{"hash:" + step1}})
		checkRoutes(t, r, []routeCase{
			{"testing@zombig.name", "someone@gmail.com", mx("out_default", "gmail.com")},
			{"", "someone@qq.com", mx("out_default", "qq.com")},
		})
		rt := r.Route("testing@zombig.name", "someone@gmail.com")
		if rt.Transport.BindAddress != "198.51.100.2" || rt.Transport.HeloName != "relay.zombig.name" {
			t.Errorf("out_default = %+v; want the guide's bind address and HELO name", rt.Transport)
		}
	})

	t.Run("whole guide", func(t *testing.T) {
		// Postfix: transport(5) overrules sender_dependent_default_transport_maps,
		// and "*" answers for every recipient, so zombig_name is never used.
		r := newRouter(t, Options{
			Transports:          guideTransports(),
			TransportMaps:       []string{"hash:" + transportMaps},
			SenderDependentMaps: []string{"hash:" + senderMaps},
		})
		checkRoutes(t, r, []routeCase{
			{"testing@zombig.name", "someone@gmail.com", mx("out_default", "gmail.com")},
			{"testing@zombig.name", "someone@qq.com", mx("qq_com_limit", "qq.com")},
			{"other@example.org", "someone@QQ.com", mx("qq_com_limit", "qq.com")},
			// "qq.com" does not match subdomains; only ".qq.com" would.
			{"other@example.org", "someone@mail.qq.com", mx("out_default", "mail.qq.com")},
		})
		rt := r.Route("a@b.example", "someone@qq.com")
		if tr := rt.Transport; tr.ConcurrencyLimit != 2 || tr.RateDelay != 10*time.Second || tr.RecipientLimit != 3 {
			t.Errorf("qq_com_limit = %+v; want the guide's limits", tr)
		}
	})

	t.Run("sender dependent", func(t *testing.T) {
		// The guide's intent: default_transport = out_default instead of
		// the "*" entry, so that the sender-dependent map can answer.
		qq := writeFile(t, dir, "transport_maps.qq", "qq.com qq_com_limit:\n")
		r := newRouter(t, Options{
			Transports:          guideTransports(),
			DefaultTransport:    "out_default",
			TransportMaps:       []string{"hash:" + qq},
			SenderDependentMaps: []string{"hash:" + senderMaps},
		})
		checkRoutes(t, r, []routeCase{
			{"testing@zombig.name", "someone@gmail.com", mx("zombig_name", "gmail.com")},
			{"<Other@ZOMBIG.name>", "someone@gmail.com", mx("zombig_name", "gmail.com")},
			// @domain has no parent-domain matching.
			{"a@sub.zombig.name", "someone@gmail.com", mx("out_default", "gmail.com")},
			{"other@example.org", "someone@gmail.com", mx("out_default", "gmail.com")},
			{"", "someone@gmail.com", mx("out_default", "gmail.com")},
			// transport_maps wins over the sender-dependent transport.
			{"testing@zombig.name", "someone@qq.com", mx("qq_com_limit", "qq.com")},
		})
	})
}

// TestRules covers the rules of transport(5) and postconf(5) one by one.
func TestRules(t *testing.T) {
	dir := t.TempDir()
	transports := map[string]*Transport{
		"hop":     {NextHop: "[smarthost.example]:587"},
		"slow":    {},
		"bysend":  {},
		"rx":      {},
		"literal": {},
	}
	tmap := writeFile(t, dir, "transport", `
# comments and blank lines are ignored
user@full.example      relay:[full-relay.example]
user@ext.example       relay:[ext-relay.example]
.sub.example           slow:
parent.example         slow:
keep.example           :[keep-relay.example]:2525
same.example           :
reset.example          relay:
own.example            hop:
own-explicit.example   hop:mx.other.example
port.example           relay:mx.port.example:2525
v6.example             relay:[IPv6:2001:DB8::1]:25
v4.example             relay:[192.0.2.1]
svc.example            relay:[svc.example]:submission
bounce.example         error:5.1.1 no such user here
plain-error.example    error:
forced.example         error:4.2.2 full
later.example          retry:try again: later
nowhere.example        discard:silently
discard.example        discard
`)
	second := writeFile(t, dir, "transport2", "* relay:\nsecond.example slow:\n")
	sdt := writeFile(t, dir, "sdt", `
dunno@zombig.name      DUNNO
@zombig.name           bysend
<>                     bysend:[bounces.example]
hop@send.example       bysend:[send-relay.example]
`)
	pcre := writeFile(t, dir, "transport.pcre", `
/^user@regexp\.example$/   rx:[rx.example]
/^regexp-domain\.example$/ rx:[wrong.example]
/^(.*)@dynamic\.example$/  $1:
/@badhop\.example$/        rx:[unterminated
`)
	r := newRouter(t, Options{
		Transports:          transports,
		TransportMaps:       []string{"hash:" + tmap, "pcre:" + pcre, "texthash:" + second},
		SenderDependentMaps: []string{"hash:" + sdt},
		RelayHost:           "[relayhost.example]",
		RecipientDelimiter:  "+-",
	})
	relayhost := want{Transport: "smtp", NextHop: "[relayhost.example]", Port: 25, Key: "smtp/[relayhost.example]"}
	relayhostBy := func(tr string) want {
		w := relayhost
		w.Transport, w.Key = tr, tr+"/[relayhost.example]"
		return w
	}
	tests := []struct {
		name string
		routeCase
	}{
		{"full address", routeCase{"a@x.example", "user@full.example",
			want{"relay", "[full-relay.example]", false, 25, "relay/[full-relay.example]", ""}}},
		{"full address, case folded", routeCase{"a@x.example", "USER@Full.Example",
			want{"relay", "[full-relay.example]", false, 25, "relay/[full-relay.example]", ""}}},
		{"other user of that domain: wildcard of the third table", routeCase{"a@x.example", "other@full.example",
			mx("relay", "full.example")}},
		{"extension stripped", routeCase{"a@x.example", "user+tag@ext.example",
			want{"relay", "[ext-relay.example]", false, 25, "relay/[ext-relay.example]", ""}}},
		{"any delimiter", routeCase{"a@x.example", "user-tag@ext.example",
			want{"relay", "[ext-relay.example]", false, 25, "relay/[ext-relay.example]", ""}}},
		{".domain matches subdomains", routeCase{"a@x.example", "u@a.b.sub.example", mx("slow", "a.b.sub.example")}},
		{".domain does not match the domain", routeCase{"a@x.example", "u@sub.example", mx("relay", "sub.example")}},
		{"domain matches itself", routeCase{"a@x.example", "u@parent.example", mx("slow", "parent.example")}},
		{"domain does not match subdomains", routeCase{"a@x.example", "u@www.parent.example", mx("relay", "www.parent.example")}},
		{"domain key in a later table before * in an earlier one", routeCase{"a@x.example", "u@second.example", mx("slow", "second.example")}},
		{"empty transport keeps the default transport", routeCase{"a@x.example", "u@keep.example",
			want{"smtp", "[keep-relay.example]:2525", false, 2525, "smtp/[keep-relay.example]:2525", ""}}},
		{"empty transport keeps the sender's transport", routeCase{"a@zombig.name", "u@keep.example",
			want{"bysend", "[keep-relay.example]:2525", false, 2525, "bysend/[keep-relay.example]:2525", ""}}},
		{"':' changes nothing: relayhost", routeCase{"a@x.example", "u@same.example", relayhost}},
		{"transport: resets the next hop to the domain", routeCase{"a@x.example", "u@reset.example", mx("relay", "reset.example")}},
		{"transport: takes the transport's own next hop", routeCase{"a@x.example", "u@own.example",
			want{"hop", "[smarthost.example]:587", false, 587, "hop/[smarthost.example]:587", ""}}},
		{"explicit next hop beats the transport's", routeCase{"a@x.example", "u@own-explicit.example", mx("hop", "mx.other.example")}},
		{"host:port keeps MX lookup", routeCase{"a@x.example", "u@port.example",
			want{"relay", "mx.port.example:2525", true, 2525, "relay/mx.port.example:2525", ""}}},
		{"IPv6 literal", routeCase{"a@x.example", "u@v6.example",
			want{"relay", "[2001:db8::1]:25", false, 25, "relay/[2001:db8::1]:25", ""}}},
		{"IPv4 literal", routeCase{"a@x.example", "u@v4.example",
			want{"relay", "[192.0.2.1]", false, 25, "relay/[192.0.2.1]", ""}}},
		{"service name", routeCase{"a@x.example", "u@svc.example",
			want{"relay", "[svc.example]:587", false, 587, "relay/[svc.example]:587", ""}}},
		{"error with code", routeCase{"a@x.example", "u@bounce.example",
			want{"error", "5.1.1 no such user here", false, 0, "error/5.1.1 no such user here", "5.1.1 no such user here"}}},
		{"error without text", routeCase{"a@x.example", "u@plain-error.example",
			want{"error", "5.0.0 Address is undeliverable", false, 0, "error/5.0.0 Address is undeliverable", "5.0.0 Address is undeliverable"}}},
		{"error always bounces", routeCase{"a@x.example", "u@forced.example",
			want{"error", "5.2.2 full", false, 0, "error/5.2.2 full", "5.2.2 full"}}},
		{"retry defers", routeCase{"a@x.example", "u@later.example",
			want{"retry", "4.0.0 try again: later", false, 0, "retry/4.0.0 try again: later", "4.0.0 try again: later"}}},
		{"discard with text", routeCase{"a@x.example", "u@nowhere.example",
			want{"discard", "silently", false, 0, "discard/silently", ""}}},
		{"discard without text", routeCase{"a@x.example", "u@discard.example",
			want{"discard", "discard.example", false, 0, "discard/discard.example", ""}}},
		{"pcre sees the full address", routeCase{"a@x.example", "user@regexp.example",
			want{"rx", "[rx.example]", false, 25, "rx/[rx.example]", ""}}},
		{"pcre does not see the domain", routeCase{"a@x.example", "other@regexp-domain.example", mx("relay", "regexp-domain.example")}},
		{"dynamic result, known transport", routeCase{"a@x.example", "literal@dynamic.example", mx("literal", "dynamic.example")}},
		{"dynamic result, unknown transport defers", routeCase{"a@x.example", "nosuch@dynamic.example",
			want{"retry", `4.3.5 mail transport unavailable: unknown transport "nosuch"`, false, 0,
				`retry/4.3.5 mail transport unavailable: unknown transport "nosuch"`, `4.3.5 mail transport unavailable: unknown transport "nosuch"`}}},
		{"dynamic result, bad next hop defers", routeCase{"a@x.example", "u@badhop.example",
			want{"retry", `4.3.5 mail system configuration error: transport "rx": bad next hop "[unterminated"`, false, 0,
				`retry/4.3.5 mail system configuration error: transport "rx": bad next hop "[unterminated"`,
				`4.3.5 mail system configuration error: transport "rx": bad next hop "[unterminated"`}}},
		{"address literal", routeCase{"a@x.example", "u@[192.0.2.7]", mx("relay", "[192.0.2.7]")}},
	}
	tests[len(tests)-1].want.MX = false
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkRoutes(t, r, []routeCase{tt.routeCase}) })
	}

	// Without the wildcard: the default transport, the sender-dependent
	// one, and relayhost.
	noWild := newRouter(t, Options{
		Transports:          transports,
		TransportMaps:       []string{"hash:" + tmap},
		SenderDependentMaps: []string{"hash:" + sdt},
		RelayHost:           "[relayhost.example]",
		RecipientDelimiter:  "+",
	})
	checkRoutes(t, noWild, []routeCase{
		{"a@x.example", "u@elsewhere.example", relayhost},
		{"a@zombig.name", "u@elsewhere.example", relayhostBy("bysend")},
		{"a+tag@zombig.name", "u@elsewhere.example", relayhostBy("bysend")},
		{"dunno@zombig.name", "u@elsewhere.example", relayhost},
		{"", "u@elsewhere.example", want{"bysend", "[bounces.example]", false, 25, "bysend/[bounces.example]", ""}},
		{"<>", "u@elsewhere.example", want{"bysend", "[bounces.example]", false, 25, "bysend/[bounces.example]", ""}},
		{"hop+x@send.example", "u@elsewhere.example", want{"bysend", "[send-relay.example]", false, 25, "bysend/[send-relay.example]", ""}},
		// The sender's transport gives way to transport_maps.
		{"a@zombig.name", "u@reset.example", mx("relay", "reset.example")},
		// No delimiter configured: user-tag is a user of its own.
		{"a@x.example", "user-tag@ext.example", relayhost},
		// A recipient without a domain can still go to the relayhost.
		{"a@x.example", "nodomain", relayhost},
	})
}

func TestDefaults(t *testing.T) {
	r := newRouter(t, Options{})
	checkRoutes(t, r, []routeCase{
		{"", "u@Example.COM.", mx("smtp", "example.com")},
		{"a@b.example", "u@[IPv6:2001:db8::5]", want{"smtp", "[2001:db8::5]", false, 25, "smtp/[2001:db8::5]", ""}},
		{"a@b.example", "u@bad..example", want{"error", `5.1.2 bad destination domain "bad..example"`, false, 0,
			`error/5.1.2 bad destination domain "bad..example"`, `5.1.2 bad destination domain "bad..example"`}},
		{"a@b.example", "nodomain", want{"error", "5.1.3 bad recipient address syntax: no domain", false, 0,
			"error/5.1.3 bad recipient address syntax: no domain", "5.1.3 bad recipient address syntax: no domain"}},
	})

	r = newRouter(t, Options{DefaultTransport: "smtp:[smart.example]:587", RelayHost: "[ignored.example]"})
	checkRoutes(t, r, []routeCase{
		{"", "u@example.com", want{"smtp", "[smart.example]:587", false, 587, "smtp/[smart.example]:587", ""}},
	})

	r = newRouter(t, Options{RelayHost: "mail.isp.example:2525"})
	checkRoutes(t, r, []routeCase{
		{"", "u@example.com", want{"smtp", "mail.isp.example:2525", true, 2525, "smtp/mail.isp.example:2525", ""}},
	})
	if rt := r.Route("", "u@example.com"); rt.Host != "mail.isp.example" || rt.Discarded() || rt.Temporary() {
		t.Errorf("Route = %+v; want Host mail.isp.example, not discarded, no error", rt)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	tmap := writeFile(t, dir, "transport", "ok.example smtp:\n# c\nbad.example nosuch:\n  continued\nhop.example smtp:[x\n")
	sdt := writeFile(t, dir, "sdt", "@a.example :[relay.example]\n@b.example DUNNO\n")
	_, err := New(Options{
		Transports: map[string]*Transport{
			"error": {},
			"t1":    {Name: "other"},
			"t2":    {BindAddress: "relay.example", TLS: "maybe", NextHop: "192.0.2.1", ConcurrencyLimit: -1},
			"t 3":   {},
		},
		DefaultTransport:    "nosuch",
		RelayHost:           "[relay",
		TransportMaps:       []string{"hash:" + tmap, "mysql:/etc/x.cf", "static:nosuch2:"},
		SenderDependentMaps: []string{"hash:" + sdt},
	})
	if err == nil {
		t.Fatal("New succeeded; want errors")
	}
	for _, want := range []string{
		`transport "error": "error" is a built-in transport`,
		`transport "t1": name "other" differs from its key`,
		`transport "t2": bind address "relay.example" is not an IP address`,
		`transport "t2": TLS level "maybe"`,
		`transport "t2": route: next hop "192.0.2.1": an IP address must be in brackets`,
		`transport "t2": limits must not be negative`,
		`transport "t 3": a transport name must be non-empty`,
		`default transport: "nosuch": unknown transport "nosuch"`,
		`relayhost: route: next hop "[relay": missing ']'`,
		`transport_maps: ` + tmap + `:3: "nosuch:  continued": unknown transport "nosuch"`,
		`transport_maps: ` + tmap + `:5: "smtp:[x": route: next hop "[x": missing ']'`,
		`unsupported table type "mysql"`,
		`transport_maps: static:nosuch2:: "nosuch2:": unknown transport "nosuch2"`,
		`sender_dependent_default_transport_maps: ` + sdt + `:1: ":[relay.example]": missing transport name`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New error lacks %q; got:\n%v", want, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 14 {
		t.Errorf("New reported %d problems; want 14:\n%v", n, err)
	}
}

// TestRouteRecipientDomain: only a next hop that is the recipient's own
// domain is marked so (its upstream is then named by its MX host); a
// relayhost or a transport's next hop, named by the configuration, is not.
func TestRouteRecipientDomain(t *testing.T) {
	for _, tt := range []struct {
		opts Options
		want bool
	}{
		{Options{}, true},
		{Options{RelayHost: "mail.isp.example:2525"}, false},
		{Options{DefaultTransport: "smtp:partner.example"}, false},
	} {
		if rt := newRouter(t, tt.opts).Route("", "u@example.com"); rt.RecipientDomain != tt.want {
			t.Errorf("Route with %+v = %+v; want RecipientDomain %v", tt.opts, rt, tt.want)
		}
	}
}

// TestSenderRelayHost: sender_dependent_relayhost_maps replaces relayhost
// for the senders it lists, as Postfix's resolve.c: searched by address,
// address without extension, @domain, "<>" for the null sender; DUNNO
// keeps relayhost; a transport_maps transport, a transport's own next hop
// or an explicit next hop of the default transport wins over it.
func TestSenderRelayHost(t *testing.T) {
	dir := t.TempDir()
	sdrh := writeFile(t, dir, "sdrh", `
alice@a.example        [alice-relay.example]:587
@a.example             [a-relay.example]:587
dunno@b.example        DUNNO
@b.example             [b-relay.example]
<>                     [bounce-relay.example]
`)
	tmap := writeFile(t, dir, "transport", "routed.example relay:\nkeep.example :[kept.example]\n")
	opts := Options{
		Transports:          map[string]*Transport{"hop": {NextHop: "[own.example]"}},
		TransportMaps:       []string{"hash:" + tmap},
		SenderRelayHostMaps: []string{"hash:" + sdrh},
		RelayHost:           "[relayhost.example]",
		RecipientDelimiter:  "+",
	}
	r := newRouter(t, opts)
	hop := func(tr, nh string, port int) want {
		return want{tr, nh, false, port, tr + "/" + nh, ""}
	}
	checkRoutes(t, r, []routeCase{
		{"alice@a.example", "u@x.example", hop("smtp", "[alice-relay.example]:587", 587)},
		{"alice+tag@a.example", "u@x.example", hop("smtp", "[alice-relay.example]:587", 587)},
		{"bob@A.Example", "u@x.example", hop("smtp", "[a-relay.example]:587", 587)},
		{"dunno@b.example", "u@x.example", hop("smtp", "[relayhost.example]", 25)},
		{"carol@b.example", "u@x.example", hop("smtp", "[b-relay.example]", 25)},
		{"", "u@x.example", hop("smtp", "[bounce-relay.example]", 25)},
		{"x@other.example", "u@x.example", hop("smtp", "[relayhost.example]", 25)},
		// transport_maps with a transport: its next hop (here the domain).
		{"alice@a.example", "u@routed.example", mx("relay", "routed.example")},
		// transport_maps with a next hop only.
		{"alice@a.example", "u@keep.example", hop("smtp", "[kept.example]", 25)},
	})

	// Without relayhost the map still applies, else the recipient domain.
	opts.RelayHost = ""
	checkRoutes(t, newRouter(t, opts), []routeCase{
		{"alice@a.example", "u@x.example", hop("smtp", "[alice-relay.example]:587", 587)},
		{"x@other.example", "u@x.example", mx("smtp", "x.example")},
	})

	// A default transport with a next hop of its own wins.
	opts.DefaultTransport = "hop"
	checkRoutes(t, newRouter(t, opts), []routeCase{
		{"alice@a.example", "u@x.example", hop("hop", "[own.example]", 25)},
	})

	bad := writeFile(t, dir, "bad", "@c.example [unterminated\n")
	if _, err := New(Options{SenderRelayHostMaps: []string{"hash:" + bad}}); err == nil ||
		!strings.Contains(err.Error(), "sender_dependent_relayhost_maps: "+bad+":1:") {
		t.Errorf("New with a bad next hop: %v; want an error naming the file and line", err)
	}
}
