package main

import (
	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// The seams main wires, pinned.
var (
	_ deliver.Refusals = enforcerRefusals{}
	_ remote.Peers     = (*debugPeers)(nil)
)
