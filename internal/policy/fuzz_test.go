package policy

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// FuzzNew: any restriction list, one item a line, compiles or is refused
// with an error, never a panic. (No check runs: some restrictions would
// ask DNS.)
func FuzzNew(f *testing.F) {
	for _, s := range []string{
		"permit_mynetworks\npermit_sasl_authenticated\nreject_unauth_destination",
		"permit_mynetworks permit_sasl_authenticated reject_unauth_destination",
		"check_client_access inline:{ 10.0.0.1=OK, 10.0.0.2=REJECT }\nreject_unauth_destination",
		"check_sender_access regexp:{ {/^a@/ REJECT}, {/b/ OK} }\nreject",
		"reject_rbl_client bl.example=127.0.0.2\ndefer",
		"inline:{",
		"check_policy_service { inet:127.0.0.1:1, timeout=1s, { default_action = 450 4.7.1 down }, try_limit=1 }",
		"check_policy_service {unix:/x,policy_context=a,request_limit=2,max_idle=1m,max_ttl=2h,retry_delay=1}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		items := strings.Split(list, "\n")
		New(Options{Relay: items, RelayDomains: []string{"relay.example", "bücher.example"}})
	})
}

// FuzzNetworkAndDomainLists: any mynetworks and relay_domains setting,
// one item a line (negations, files, tables, pasted comma lists), is
// read or refused with an error, never a panic; a client is then judged
// without one either.
func FuzzNetworkAndDomainLists(f *testing.F) {
	for _, s := range []string{
		"127.0.0.0/8\n!192.0.2.66, 192.0.2.0/24\n[::1]/128",
		"!!10.0.0.0/8\n!\ncidr:{ 10.0.0.0/8 OK }",
		"relay.example, !sub.relay.example\nbücher.example",
		"/nonexistent/mynetworks\nhash:/nonexistent/domains",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		items := strings.Split(list, "\n")
		e, err := New(Options{MyNetworkSpec: items, NetworkTables: &table.Set{}, RelayDomains: items,
			Relay: []string{"permit_mynetworks", "reject_unauth_destination"}})
		if err != nil || e == nil {
			return
		}
		e.Trusted(netip.MustParseAddr("192.0.2.66"))
		e.Trusted(netip.MustParseAddr("::ffff:10.1.2.3"))
	})
}
