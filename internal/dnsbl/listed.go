package dnsbl

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
)

// Blocklist is a Checker as the relay policy asks it (policy.Blocklist):
// whether a client is listed, and the text to reject it with. Lists that
// gave no usable answer, and a lookup that timed out and so let the
// client through, are logged to Log. A lookup that timed out when the
// Checker fails closed is an error whose FailClosed method says so.
//
// Allow makes it an allowlist (permit_dnswl_client, permit_rhswl_client):
// a list that gave no usable answer is an error, which Postfix turns into
// DEFER_IF_REJECT, since letting the client through unchecked is not what
// a failed allowlist means.
type Blocklist struct {
	C     *Checker
	Log   *slog.Logger
	Allow bool
}

// Listed checks ip in every list.
func (b Blocklist) Listed(ctx context.Context, ip netip.Addr) (bool, string, error) {
	res, err := b.C.Check(ctx, ip)
	if err != nil {
		return false, "", err
	}
	return b.judge(res, ip.String(), res.RejectText(ip))
}

// ListedDomain checks a domain name in every list (reject_rhsbl_*,
// permit_rhswl_client); class and what are for the reply ("Sender
// address", the sender), as in Postfix's default_rbl_reply.
func (b Blocklist) ListedDomain(ctx context.Context, domain, class, what string) (bool, string, error) {
	res, err := b.C.CheckName(ctx, domain)
	if err != nil {
		return false, "", err
	}
	return b.judge(res, domain, res.ReplyText(class, what))
}

func (b Blocklist) judge(res Result, who, text string) (bool, string, error) {
	for _, f := range res.Failures {
		b.Log.Warn("DNS list gave no usable answer", "zone", f.Zone, "lookup", who, "err", f.Err, "timed_out", res.TimedOut)
	}
	switch {
	case res.Listed:
		if res.TimedOut {
			// Fail closed, but no list said so: a temporary refusal, so
			// that a DNS outage never bounces the client's mail.
			return false, "", noAnswer(text)
		}
		return true, text, nil
	case b.Allow && len(res.Failures) > 0:
		return false, "", errors.New("allowlist gave no usable answer")
	case res.TimedOut:
		b.Log.Warn("blocklist lookup timed out; client let through (fail open)", "lookup", who, "server", b.C.Server())
	}
	return false, text, nil
}

// noAnswer is the error for lists that did not answer in time when the
// check fails closed; the policy defers the client (policy.Blocklist).
type noAnswer string

func (e noAnswer) Error() string    { return string(e) }
func (e noAnswer) FailClosed() bool { return true }
