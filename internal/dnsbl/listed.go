package dnsbl

import (
	"context"
	"log/slog"
	"net/netip"
)

// Blocklist is a Checker as the relay policy asks it (policy.Blocklist):
// whether a client is listed, and the text to reject it with. Lists that
// gave no usable answer, and a lookup that timed out and so let the
// client through, are logged to Log. A lookup that timed out when the
// Checker fails closed is an error whose FailClosed method says so.
type Blocklist struct {
	C   *Checker
	Log *slog.Logger
}

// Listed checks ip in every list.
func (b Blocklist) Listed(ctx context.Context, ip netip.Addr) (bool, string, error) {
	res, err := b.C.Check(ctx, ip)
	if err != nil {
		return false, "", err
	}
	for _, f := range res.Failures {
		b.Log.Warn("blocklist gave no usable answer", "zone", f.Zone, "client", ip, "err", f.Err, "timed_out", res.TimedOut)
	}
	switch {
	case res.TimedOut && !res.Listed:
		b.Log.Warn("blocklist lookup timed out; client let through (fail open)", "client", ip, "server", b.C.Server())
	case res.TimedOut:
		// Fail closed, but no list said so: a temporary refusal, so that
		// a DNS outage never bounces the client's mail.
		return false, "", noAnswer(res.RejectText(ip))
	}
	return res.Listed, res.RejectText(ip), nil
}

// noAnswer is the error for lists that did not answer in time when the
// check fails closed; the policy defers the client (policy.Blocklist).
type noAnswer string

func (e noAnswer) Error() string    { return string(e) }
func (e noAnswer) FailClosed() bool { return true }
