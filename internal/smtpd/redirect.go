package smtpd

import (
	"slices"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/headercheck"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// redirected applies header_checks REDIRECT and BCC to a message's
// recipients, as Postfix's cleanup(8) does: REDIRECT sends the message to
// its address instead of every recipient (BCC ones too), BCC adds each
// address once, with NOTIFY=NEVER (cleanup_addr_bcc_dsn): a notice about
// a blind copy would tell the sender who got it.
func redirected(rcpts []spool.Recipient, checks headercheck.Result) []spool.Recipient {
	if checks.Redirect != "" {
		return []spool.Recipient{{Addr: checks.Redirect, Status: spool.Pending}}
	}
	for _, a := range checks.BCC {
		if !slices.ContainsFunc(rcpts, func(r spool.Recipient) bool { return strings.EqualFold(r.Addr, a) }) {
			rcpts = append(rcpts, spool.Recipient{Addr: a, Status: spool.Pending, Notify: "NEVER"})
		}
	}
	return rcpts
}
