package policy

import (
	"context"
	"errors"
	"net/netip"
	"strings"
)

// DomainList is one DNS list looked up by domain name (RFC 5782's
// RHSBL): Postfix's reject_rhsbl_* and permit_rhswl_client.
// *dnsbl.Blocklist is one.
type DomainList interface {
	// ListedDomain reports whether domain is listed, with the reply text
	// that names class and what ("Sender address", the sender). An
	// error means the list could not be asked.
	ListedDomain(ctx context.Context, domain, class, what string) (listed bool, text string, err error)
}

// DNSLists opens the lists that the domain and allowlist restrictions
// name, with Postfix's optional "=d.d.d.d" result filter.
type DNSLists interface {
	// OpenDomain opens an RHSBL zone; allow makes it an allowlist,
	// whose failures are errors.
	OpenDomain(zone string, allow bool) (DomainList, error)
	// OpenAllow opens a DNSWL zone (permit_dnswl_client): a list that
	// gave no usable answer is an error.
	OpenAllow(zone string) (Blocklist, error)
}

// Postfix's names for what a DNS list reply is about (smtpd_check.h).
const (
	classClient    = "Client host"
	classRevClient = "Unverified Client host"
	classHelo      = "Helo command"
	classSender    = "Sender address"
	classRecipient = "Recipient address"
)

// compileDNSList compiles reject_rhsbl_*, permit_dnswl_client and
// permit_rhswl_client; ok is false for any other name.
func (e *Engine) compileDNSList(name string, args []string) (check func(context.Context, *Engine, *Request) Decision, ok bool, err error) {
	switch name {
	case "reject_rhsbl_client", "reject_rhsbl_reverse_client", "reject_rhsbl_helo", "reject_rhsbl_sender",
		"reject_rhsbl_recipient", "permit_dnswl_client", "permit_rhswl_client":
	default:
		return nil, false, nil
	}
	if len(args) != 1 {
		return nil, true, errors.New("takes 1 argument, a DNS list's zone (zone or zone=d.d.d.d)")
	}
	if e.opts.DNSLists == nil {
		return nil, true, errors.New("DNS lists are not available")
	}
	rule := name + " " + args[0]
	if name == "permit_dnswl_client" {
		bl, err := e.opts.DNSLists.OpenAllow(args[0])
		if err != nil {
			return nil, true, err
		}
		return func(ctx context.Context, e *Engine, req *Request) Decision {
			if !req.ClientIP.IsValid() || !e.allowable(req) {
				return Decision{}
			}
			ok, _, err := listed(ctx, bl, rule, req)
			return allowed(ok, err, req.ClientIP.Unmap().String(), rule)
		}, true, nil
	}
	if name == "reject_rhsbl_client" || name == "reject_rhsbl_reverse_client" || name == "permit_rhswl_client" {
		e.needsNames.Store(true)
	}
	dl, err := e.opts.DNSLists.OpenDomain(args[0], name == "permit_rhswl_client")
	if err != nil {
		return nil, true, err
	}
	return func(ctx context.Context, e *Engine, req *Request) Decision {
		var class, what string
		switch name {
		case "reject_rhsbl_client", "permit_rhswl_client":
			class, what = classClient, req.ClientName
		case "reject_rhsbl_reverse_client":
			class, what = classRevClient, req.ReverseName
		case "reject_rhsbl_helo":
			class, what = classHelo, req.Helo
		case "reject_rhsbl_sender":
			class, what = classSender, req.Sender
		case "reject_rhsbl_recipient":
			class, what = classRecipient, req.Recipient
		}
		domain := listedDomain(what)
		if domain == "" {
			return Decision{}
		}
		if name == "permit_rhswl_client" {
			if !e.allowable(req) {
				return Decision{}
			}
			listed, _, err := dl.ListedDomain(ctx, domain, class, what)
			return allowed(listed, err, what, rule)
		}
		listed, text, err := dl.ListedDomain(ctx, domain, class, what)
		var fc interface{ FailClosed() bool }
		switch {
		case errors.As(err, &fc) && fc.FailClosed():
			return deferral(450, "4.7.1", text, rule)
		case err != nil:
			if ctx.Err() == nil {
				e.opts.Log.Warn("DNS list lookup failed; let through", "rule", rule, "lookup", domain, "err", err)
			}
			return Decision{}
		case !listed:
			return Decision{}
		}
		// Postfix's default_rbl_reply, with maps_rbl_reject_code 554.
		return reject(554, "5.7.1", text, rule)
	}, true, nil
}

// listedDomain is the domain Postfix's reject_rbl_domain looks up for
// what: the part after the last "@" of an address, or the name itself;
// "" (nothing to look up) for an address literal, a null sender, an
// unknown client name and a name of one label (a bare local part,
// "localhost"), which no domain list lists.
func listedDomain(what string) string {
	domain := what
	if at := strings.LastIndexByte(what, '@'); at >= 0 {
		domain = what[at+1:]
	}
	if domain == "" || domain[0] == '[' || !strings.Contains(strings.TrimSuffix(domain, "."), ".") {
		return ""
	}
	if _, err := netip.ParseAddr(domain); err == nil {
		return "" // a HELO that is a bare address
	}
	return domain
}

// allowable is Postfix's safety rule for permit_dnswl_client and
// permit_rhswl_client: an allowlisted client is never permitted to a
// recipient that reject_unauth_destination would refuse, so an allowlist
// cannot open the relay.
func (e *Engine) allowable(req *Request) bool {
	return req.Recipient == "" || e.authDestination(req.Recipient)
}

// allowed is an allowlist's decision: permit when listed; when the list
// gave no answer, Postfix's DEFER_IF_REJECT ("450 4.7.1 <what>: Client
// host rejected: Service unavailable"), so a refusal later in the lists
// is only temporary while the allowlist cannot be asked.
func allowed(listed bool, err error, what, rule string) Decision {
	switch {
	case listed:
		return Decision{Verdict: Permit, Rule: rule}
	case err != nil:
		d := deferral(450, "4.7.1", "<"+what+">: "+classClient+" rejected: Service unavailable", rule)
		d.deferIf = deferIfReject
		return d
	}
	return Decision{}
}

// ListCache keeps a session's DNS list answers about its client, as
// Postfix's smtpd keeps them (ctable): a client with many recipients
// asks each list once, and a list that does not answer costs its
// timeout once per session, not once per RCPT. The zero value is ready;
// a session owns one and uses it from one goroutine.
type ListCache struct {
	m map[string]listAnswer
}

type listAnswer struct {
	listed bool
	text   string
	err    error
}

// listed asks bl about req's client through req.Lists, keyed by rule.
func listed(ctx context.Context, bl Blocklist, rule string, req *Request) (bool, string, error) {
	c := req.Lists
	if c != nil {
		if a, ok := c.m[rule]; ok {
			return a.listed, a.text, a.err
		}
	}
	l, text, err := bl.Listed(ctx, req.ClientIP)
	if c != nil && ctx.Err() == nil {
		if c.m == nil {
			c.m = make(map[string]listAnswer)
		}
		c.m[rule] = listAnswer{l, text, err}
	}
	return l, text, err
}
