package policy

import (
	"context"
	"errors"
)

// checkBlocklist is one DNS list restriction (reject_rbl_client and its
// kin) for req: a refusal when the client is listed; none when it is not,
// has no address, or the lookup failed (a deferral for a list that fails
// closed).
func (e *Engine) checkBlocklist(ctx context.Context, bl Blocklist, rule string, req *Request) Decision {
	if !req.ClientIP.IsValid() {
		return Decision{}
	}
	isListed, text, err := listed(ctx, bl, rule, req)
	if err != nil {
		var fc interface{ FailClosed() bool }
		if errors.As(err, &fc) && fc.FailClosed() {
			return deferral(450, "4.7.1", "Service unavailable; client ["+req.ClientIP.String()+"] blocklist lookup failed", rule)
		}
		e.opts.Log.Warn("blocklist lookup failed; client let through", "rule", rule, "client", req.ClientIP, "err", err)
		return Decision{}
	}
	if !isListed {
		return Decision{}
	}
	return reject(554, "5.7.1", text, rule)
}
