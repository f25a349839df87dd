package main

import "github.com/relaykeeper/relaykeeper/internal/smtpd"

// The adapters main keeps until their providers implement the seams.
var _ smtpd.Bans = connectBans{}
