package srs_test

import (
	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/smtpd"
	"github.com/relaykeeper/relaykeeper/internal/srs"
)

// The Rewriter is what the relay plugs into delivery (the sender going
// out) and into its SMTP server (the SRS recipients coming back).
var (
	_ deliver.SenderRewriter = (*srs.Rewriter)(nil)
	_ smtpd.SRSReverser      = (*srs.Rewriter)(nil)
)
