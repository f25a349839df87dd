package policy

import (
	"context"
	"errors"
	"strings"
)

// unknownDomain refuses an address whose domain cannot receive mail, in
// Postfix's words and with its default codes: unknown_address_reject_code
// 450 for a domain that does not exist or has neither MX nor address, a
// deferral if nothing else refuses when DNS fails
// (unknown_address_tempfail_action = defer_if_permit), and 550 5.7.27 for
// a sender, 556 5.1.10 for a recipient, at a null MX.
func (e *Engine) unknownDomain(ctx context.Context, addr, who, detail, rule string) Decision {
	at := strings.LastIndexByte(addr, '@')
	domain := lower(strings.TrimSuffix(addr[at+1:], "."))
	if at < 0 || domain == "" {
		return Decision{} // the null sender, or a bare localpart
	}
	if pm := e.opts.Postmaster; pm != "" && domain == lower(pm[strings.LastIndexByte(pm, '@')+1:]) {
		// The relay's own domain, where RCPT TO:<Postmaster> goes: Postfix
		// does not look up its own (local) domains, $myhostname among them.
		return Decision{}
	}
	err := e.opts.MailDomains.MailDomain(ctx, domain)
	if err == nil || ctx.Err() != nil {
		return Decision{}
	}
	prefix := "<" + addr + ">: " + who + " address rejected: "
	var n interface{ NullMX() bool }
	if errors.As(err, &n) && n.NullMX() {
		d := reject(550, "5.7.27", prefix+"Domain "+domain+" does not accept mail (nullMX)", rule)
		if who == "Recipient" {
			d.Code, d.Enhanced = 556, "5.1.10"
		}
		return d
	}
	d := deferral(450, "4."+detail, prefix+"Domain not found", rule)
	var t interface{ Temporary() bool }
	if errors.As(err, &t) && t.Temporary() {
		d.deferIf = deferIfPermit
	}
	return d
}

// unknownClient is Postfix's reject_unknown_client_hostname (the client's
// PTR name must lead back to its address) and, with reverse,
// reject_unknown_reverse_client_hostname (it must have a PTR name at all),
// with Postfix's reply and its default unknown_client_reject_code, 450;
// a DNS failure defers only if nothing else refuses
// (unknown_*_hostname_tempfail_action = defer_if_permit).
func unknownClient(req *Request, reverse bool, rule string) Decision {
	known, what := req.ClientName != "", "hostname"
	if reverse {
		known, what = req.ReverseName != "", "reverse hostname"
	}
	if known {
		return Decision{}
	}
	d := deferral(450, "4.7.1", "Client host rejected: cannot find your "+what+", ["+req.ClientIP.Unmap().String()+"]", rule)
	if req.NameTempFail {
		d.deferIf = deferIfPermit
	}
	return d
}

// unknownHelo is Postfix's reject_unknown_helo_hostname: the HELO name
// must have an address or an MX record. Postfix's reply and default
// unknown_hostname_reject_code, 450; a DNS failure defers only if nothing
// else refuses. An address literal, and a session without HELO, are not
// looked up.
func (e *Engine) unknownHelo(ctx context.Context, helo, rule string) Decision {
	name := lower(trimDot(helo))
	if name == "" || strings.HasPrefix(name, "[") {
		return Decision{}
	}
	err := e.opts.MailDomains.MailDomain(ctx, name)
	var n interface{ NullMX() bool }
	if err == nil || ctx.Err() != nil || errors.As(err, &n) && n.NullMX() {
		// A null MX is still a record: the name exists.
		return Decision{}
	}
	d := deferral(450, "4.7.1", "<"+helo+">: Helo command rejected: Host not found", rule)
	var t interface{ Temporary() bool }
	if errors.As(err, &t) && t.Temporary() {
		d.deferIf = deferIfPermit
	}
	return d
}
