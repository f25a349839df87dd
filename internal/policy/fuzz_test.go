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
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, list string) {
		items := strings.Split(list, "\n")
		New(Options{Relay: items, RelayDomains: []string{"relay.example", "bücher.example"}})
	})
}
