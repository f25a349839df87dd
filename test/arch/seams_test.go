package arch

import (
	"github.com/relaykeeper/relaykeeper/internal/auth"
	"github.com/relaykeeper/relaykeeper/internal/debugpeer"
	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/dnsbl"
	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/policy"
	"github.com/relaykeeper/relaykeeper/internal/pop3"
	"github.com/relaykeeper/relaykeeper/internal/queue"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/smtpd"
	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/internal/verify"
)

// The seams between packages: each interface is declared by its consumer
// and implemented by a concrete type of the package that provides it.
// These lines fail to compile when either side drifts.
var (
	_ policy.Tables            = policy.SetTables{}
	_ policy.TrustedClients    = (*auth.Secrets)(nil)
	_ policy.TrustedClients    = (*auth.ServerFile)(nil)
	_ policy.SenderOwners      = (*auth.SenderLogins)(nil)
	_ policy.Blocklist         = dnsbl.Blocklist{}
	_ policy.Verifier          = policy.AddressVerifier{}
	_ policy.RecipientVerifier = (*verify.Verifier)(nil)

	_ queue.Pace = deliver.Pace{}

	_ pop3.APOPSecrets   = (*auth.Secrets)(nil)
	_ pop3.APOPSecrets   = (*auth.ServerFile)(nil)
	_ pop3.Authenticator = (*auth.ServerFile)(nil)

	_ remote.Accounts = (*auth.ClientFile)(nil)

	_ spool.Watcher = (*deliver.Scheduler)(nil)

	_ smtpd.Bans            = (*enforce.Bans)(nil)
	_ smtpd.Kicker          = (*deliver.Scheduler)(nil)
	_ smtpd.Kicker          = deliver.ArrivalKick{}
	_ smtpd.TrustedNetworks = (*policy.Engine)(nil)
	_ smtpd.DebugPeers      = (*debugpeer.List)(nil)
	_ smtpd.UpstreamDialer  = (*remote.Dialer)(nil)
	_ smtpd.Pacer           = (*deliver.ProxyPace)(nil)
	_ smtpd.Authenticator   = auth.SMTPAuth{}
)
