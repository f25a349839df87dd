package main

import (
	"fmt"

	"github.com/relaykeeper/relaykeeper/internal/dkim"
	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/milter"
)

// addMiltersAndDKIM chains the milters after the --filter programs on the
// server side, and DKIM signing last on the client side, so that a message
// is signed as it leaves, after every filter that might change it.
func (r *relay) addMiltersAndDKIM() error {
	var server []filter.Filter
	if r.serverFilter != nil {
		server = append(server, r.serverFilter)
	}
	for _, addr := range r.cfg.Milter.Server {
		m, err := milter.New(addr, milter.Options{DefaultAction: r.cfg.Milter.DefaultAction,
			MacroValues: map[string]string{"j": r.cfg.Domain, "{daemon_name}": "relaykeeper"}})
		if err != nil {
			return fmt.Errorf("milter.server %q: %w", addr, err)
		}
		server = append(server, m)
	}
	switch len(server) {
	case 0:
	case 1:
		r.serverFilter = server[0]
	default:
		r.serverFilter = filter.Chain(server...)
	}
	if k := r.cfg.DKIM; k.Domain != "" {
		s, err := dkim.LoadSigner(k.Domain, k.Selector, k.Key)
		if err != nil {
			return fmt.Errorf("dkim: %w", err)
		}
		if r.clientFilter != nil {
			r.clientFilter = filter.Chain(r.clientFilter, s.Filter())
		} else {
			r.clientFilter = s.Filter()
		}
	}
	return nil
}
