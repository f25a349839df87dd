package arch

import (
	"github.com/relaykeeper/relaykeeper/internal/auth"
	"github.com/relaykeeper/relaykeeper/internal/policy"
)

// The seams between packages: each interface is declared by its consumer
// and implemented by a concrete type of the package that provides it.
// These lines fail to compile when either side drifts.
var (
	_ policy.Tables         = policy.SetTables{}
	_ policy.TrustedClients = (*auth.Secrets)(nil)
)
