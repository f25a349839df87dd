package policy

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// everyoneProbes are requests from clients far apart, with names, senders
// and recipients far apart, none of them the relay's own: an access table
// that permits all of them permits everyone.
func everyoneProbes() []*Request {
	var rs []*Request
	for i, d := range everyDomain {
		ip := netip.MustParseAddr(everyone[0][i%len(everyone[0])])
		// Certificate fingerprints as Postfix prints them ("D7:04:...").
		var fp, pk [32]string
		for k := range fp {
			fp[k], pk[k] = fmt.Sprintf("%02X", (i*37+k*11)&0xff), fmt.Sprintf("%02X", (i*53+k*7+1)&0xff)
		}
		rs = append(rs, &Request{ClientIP: ip, Helo: "mx." + d, Sender: "someone@" + d, Recipient: "victim@" + d,
			CertFingerprint: strings.Join(fp[:], ":"), PubKeyFingerprint: strings.Join(pk[:], ":"), CertCN: "client." + d})
	}
	return rs
}

// permitsEveryone reports an access check (check_client_access and the
// like, permit_tls_clientcerts's relay_clientcerts; never one that asks a
// server) whose table permits every probe: "0.0.0.0/0 OK" in a cidr:
// table, static:OK, /./ OK. Anyone can make a client certificate.
func (e *Engine) permitsEveryone(r restriction) bool {
	switch r.name {
	case "check_client_access", "check_reverse_client_hostname_access", "check_helo_access",
		"check_sender_access", "check_recipient_access", "check_ccert_access", "permit_tls_clientcerts":
	default:
		return false
	}
	for _, req := range everyoneProbes() {
		if d := r.check(context.Background(), e, req); d.Verdict != Permit {
			return false
		}
	}
	return true
}

// openRelayError refuses relay and recipient lists where an access table
// that permits everyone stands ahead of every relay check (a restriction
// that refuses relaying, or a restriction class, which Validate has looked
// into): anyone could relay anywhere. Postfix takes it.
func (e *Engine) openRelayError() error {
	var open *ListError
	for _, i := range []int{3, recipientList} {
		for _, r := range e.lists[i] {
			if r.warnOnly {
				continue
			}
			if _, class := e.classes[r.name]; class || relayCheck[r.name] {
				return nil
			}
			if open == nil && e.permitsEveryone(r) {
				open = &ListError{listNames[i], r.item, errors.New("permits every client, sender or recipient ahead of reject_unauth_destination: " +
					"anyone could relay anywhere (an open relay); list whom you trust, or put the relay check first")}
				break
			}
		}
	}
	if open == nil {
		return nil
	}
	return open
}

// relayCheck are the restrictions that refuse recipients outside
// relay_domains, or everyone.
var relayCheck = map[string]bool{"reject_unauth_destination": true, "defer_unauth_destination": true, "reject": true, "defer": true}
