package main

import (
	"github.com/relaykeeper/relaykeeper/internal/debugpeer"
	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/reload"
	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// The seams main wires, pinned.
var (
	_ deliver.Refusals = enforcerRefusals{}
	_ remote.Peers     = (*debugpeer.List)(nil)
	_ reload.Loader    = (*relay)(nil)
)
