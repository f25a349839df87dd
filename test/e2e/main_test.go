// Package e2e runs the built relaykeeper binary against real peers (Postfix's
// smtp-sink and smtp-source, swaks, a private Postfix, a scripted SMTP
// server) over loopback, and checks what reaches the peers, what the spool
// holds and what the mail log says.
package e2e

import (
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
