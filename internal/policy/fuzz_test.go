package policy

import (
	"strings"
	"testing"
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
