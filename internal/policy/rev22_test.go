package policy

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

// TestRev22AccessTableEditedToPermitEveryone: an access table that OKs
// every client ahead of reject_unauth_destination is refused at start,
// but tables reload when their file changes (and on SIGHUP) without that
// check: one edit ("0.0.0.0/0 OK") and anyone could relay anywhere. Such
// a table now permits no one there (DUNNO), as a relay_domains table
// edited to hold every domain holds none.
func TestRev22AccessTableEditedToPermitEveryone(t *testing.T) {
	for _, list := range []string{"relay", "recipient"} {
		t.Run(list, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "client_access")
			if err := os.WriteFile(path, []byte("192.0.2.0/24 OK\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			var set table.Set
			items := []string{"check_client_access cidr:" + path, "reject_unauth_destination"}
			opts := Options{RelayDomains: []string{"relay.example"}, Tables: SetTables{Set: &set}}
			if list == "relay" {
				opts.Relay = items
			} else {
				opts.Relay, opts.Recipient = []string{"permit_mynetworks"}, items
			}
			e := engine(t, opts)
			check := func(ip netip.Addr) Decision {
				return e.Check(context.Background(), StageRcpt, &Request{ClientIP: ip, Sender: "a@b.example", Recipient: "victim@elsewhere.example"})
			}
			if d := check(netip.MustParseAddr("192.0.2.7")); d.Refuses() {
				t.Fatalf("the listed client: %s; want it to relay", d.Reply())
			}
			if d := check(outside); !d.Refuses() {
				t.Fatalf("an outside client relays before the edit")
			}
			if err := os.WriteFile(path, []byte("192.0.2.0/24 OK\n0.0.0.0/0 OK\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if errs := set.ReloadAll(); errs != nil {
				t.Fatal(errs)
			}
			if d := check(outside); !d.Refuses() {
				t.Errorf("after the table was edited to hold 0.0.0.0/0 OK, an outside client relays to victim@elsewhere.example: an open relay")
			}
		})
	}
}

// TestRev22EveryDomainWithRelayRecipientMaps: relay_domains that holds
// every domain is no open relay when relay_recipient_maps lists the
// addresses relayed to (an inbound gateway for many domains, whose list
// of valid addresses is kept and not a list of domains): every other
// recipient is refused 550 "User unknown in relay recipient table". pol22
// refused it at start as an open relay.
func TestRev22EveryDomainWithRelayRecipientMaps(t *testing.T) {
	var set table.Set
	e := engine(t, Options{RelayDomains: []string{"static:OK"}, Tables: SetTables{Set: &set},
		RelayRecipientMaps: []string{"inline:{ bob@one.example=OK, @two.example=OK }"}})
	for rcpt, relays := range map[string]bool{
		"bob@one.example": true, "anyone@two.example": true,
		"alice@one.example": false, "victim@elsewhere.example": false,
	} {
		d := e.Check(context.Background(), StageRcpt, &Request{ClientIP: outside, Sender: "a@b.example", Recipient: rcpt})
		if d.Refuses() == relays {
			t.Errorf("%s from outside: %s; want relayed %v", rcpt, d.Reply(), relays)
		}
	}
}

// TestRev22EveryDomainEveryRecipient: relay_recipient_maps that lists
// every address (static:OK) does not make relay_domains = static:OK safe.
func TestRev22EveryDomainEveryRecipient(t *testing.T) {
	var set table.Set
	_, err := New(Options{RelayDomains: []string{"static:OK"}, Tables: SetTables{Set: &set},
		RelayRecipientMaps: []string{"static:OK"}, Relay: []string{"permit_mynetworks", "reject_unauth_destination"}})
	if err == nil {
		t.Errorf("relay_domains and relay_recipient_maps both static:OK: taken; want refused as an open relay")
	}
}
