package main

import (
	"fmt"

	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/dkim"
	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/milter"
)

// addMiltersAndDKIM chains the milters after the --filter programs on the
// server side, and DKIM signing last on the client side, so that a message
// is signed as it leaves, after every filter that might change it.
func (r *relay) addMiltersAndDKIM() error {
	server, mc := []filter.Filter{r.serverFilter}, r.cfg.Milter
	for _, addr := range mc.Server {
		m, err := milter.New(addr, milter.Options{DefaultAction: mc.DefaultAction, ConnectTimeout: mc.ConnectTimeout,
			Timeout: mc.CommandTimeout, ContentTimeout: mc.ContentTimeout, MacroValues: mc.MacroValues(r.cfg.Domain)})
		if err != nil {
			return config.Setting("milter.server", fmt.Errorf("%q: %w", addr, err))
		}
		server = append(server, m)
	}
	r.serverFilter = filter.Join(server...)
	if k := r.cfg.DKIM; k.Domain != "" {
		s, err := dkim.LoadSigner(k.Domain, k.Selector, k.Key)
		if err != nil {
			return config.Setting("dkim.key", err)
		}
		r.clientFilter = filter.Join(r.clientFilter, s.Filter())
	}
	if r.cfg.Proxies() { // no queue: the client side's filters run during the session
		r.serverFilter = filter.Join(r.serverFilter, filter.Proxied(r.clientFilter))
	}
	return nil
}
