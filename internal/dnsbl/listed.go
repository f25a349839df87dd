package dnsbl

import (
	"context"
	"log/slog"
	"net/netip"
)

// Blocklist is a Checker as the relay policy asks it (policy.Blocklist):
// whether a client is listed, and the text to reject it with. Lists that
// gave no usable answer, and a lookup that timed out and so let the
// client through, are logged to Log.
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
	if res.TimedOut && !res.Listed {
		b.Log.Warn("blocklist lookup timed out; client let through (fail open)", "client", ip, "server", b.C.Server())
	}
	return res.Listed, res.RejectText(ip), nil
}
