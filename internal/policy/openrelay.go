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
	if !permitsByTable[r.name] {
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
// into): anyone could relay anywhere. Postfix takes it. The access checks
// that stand there are guarded too, since their tables reload without
// this check (on change, on SIGHUP).
func (e *Engine) openRelayError() error {
	var open *ListError
	for _, g := range e.guardedLists() {
		for j := range e.lists[g.list][:g.n] {
			r := &e.lists[g.list][j]
			if r.warnOnly {
				continue
			}
			if open == nil && e.permitsEveryone(*r) {
				open = &ListError{listNames[g.list], r.item, errors.New("permits every client, sender or recipient ahead of reject_unauth_destination: " +
					"anyone could relay anywhere (an open relay); list whom you trust, or put the relay check first")}
			}
			e.guard(r)
		}
	}
	if open == nil {
		return nil
	}
	return open
}

// guardedList is the head of a restriction list, its first n items, that
// runs before the relay check.
type guardedList struct{ list, n int }

// guardedLists are the items ahead of the relay check: those of the relay
// list before its own, or else those of the recipient list before its
// own (the relay list, which ends without one, decides nothing there);
// both lists whole if neither has one (Validate refuses that).
func (e *Engine) guardedLists() []guardedList {
	var gs []guardedList
	for _, i := range []int{3, recipientList} {
		for j, r := range e.lists[i] {
			if _, class := e.classes[r.name]; !r.warnOnly && (class || relayCheck[r.name]) {
				return []guardedList{{i, j}}
			}
		}
		gs = append(gs, guardedList{i, len(e.lists[i])})
	}
	return gs
}

// guard makes an access check ahead of the relay check permit no one
// (DUNNO, with a warning) once its table permits everyone: a table edited
// to say "0.0.0.0/0 OK" and reloaded must not open the relay, as a
// relay_domains table edited to hold every domain holds none.
func (e *Engine) guard(r *restriction) {
	if !permitsByTable[r.name] {
		return
	}
	unguarded := *r
	r.check = func(ctx context.Context, e *Engine, req *Request) Decision {
		d := unguarded.check(ctx, e, req)
		if d.Verdict == Permit && e.permitsEveryone(unguarded) {
			return Decision{Warnings: []string{unguarded.item + ": OK ignored: the table now permits everyone ahead of " +
				"reject_unauth_destination (an open relay); fix the table"}}
		}
		return d
	}
}

// permitsByTable are the restrictions that permit whom a table lists.
var permitsByTable = map[string]bool{"check_client_access": true, "check_reverse_client_hostname_access": true,
	"check_helo_access": true, "check_sender_access": true, "check_recipient_access": true,
	"check_ccert_access": true, "permit_tls_clientcerts": true}

// relayCheck are the restrictions that refuse recipients outside
// relay_domains, or everyone.
var relayCheck = map[string]bool{"reject_unauth_destination": true, "defer_unauth_destination": true, "reject": true, "defer": true}
