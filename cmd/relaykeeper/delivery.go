package main

import (
	"fmt"
	"net"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/bounce"
	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/route"
)

// newRouter builds the routing tables and the dialer of their destinations.
func (r *relay) newRouter() (*route.Dialer, error) {
	cfg := &r.cfg
	opts := route.Options{
		Transports:          map[string]*route.Transport{},
		DefaultTransport:    cfg.Routing.DefaultTransport,
		TransportMaps:       cfg.Routing.TransportMaps,
		SenderDependentMaps: cfg.Routing.SenderDependentMaps,
		SenderRelayHostMaps: cfg.Routing.SenderRelayHostMaps,
		RecipientDelimiter:  cfg.RecipientDelimiter,
	}
	if cfg.Forward.To != "" {
		// forward.to is E-MailRelay's smarthost: used as is, no MX lookup.
		host, port, err := net.SplitHostPort(r.cfg.Upstream())
		if err != nil {
			return nil, fmt.Errorf("forward.to: %w", err)
		}
		opts.RelayHost = "[" + host + "]:" + port
	}
	for name, t := range cfg.Transports {
		opts.Transports[name] = &route.Transport{Name: name, NextHop: t.NextHop, BindAddress: t.BindAddress,
			HeloName: t.HeloName, TLS: t.TLS, Auth: t.Auth, LogName: t.LogName,
			ConcurrencyLimit: t.ConcurrencyLimit, InitialConcurrency: t.InitialConcurrency,
			RecipientLimit: t.RecipientLimit, RateDelay: t.RateDelay}
	}
	return route.NewDialer(route.DialerOptions{
		Routes:              opts,
		Session:             r.remote,
		Resolver:            &route.Resolver{Server: cfg.Routing.DNSServer, Timeout: 10 * time.Second},
		ConcurrencyLimit:    cfg.Routing.ConcurrencyLimit,
		RecipientLimit:      cfg.Routing.RecipientLimit,
		RateDelay:           cfg.Routing.RateDelay,
		InitialConcurrency:  cfg.Routing.InitialConcurrency,
		Debug:               r.debug,
		TLS:                 cfg.TLS.ClientSettings(),
		Log:                 r.log,
		PasswordMaps:        cfg.Auth.PasswordMaps,
		SenderDependentAuth: cfg.Auth.SenderDependentAuth,
		FallbackRelays:      cfg.Routing.FallbackRelay,
	})
}

// dialer makes upstream sessions as the configuration says.
func (r *relay) dialer() *remote.Dialer {
	return &remote.Dialer{Options: r.remote, Log: r.log, Debug: r.debug}
}

func (r *relay) newScheduler() *deliver.Scheduler { return r.newSchedulerWith(nil) }

// newSchedulerWith is newScheduler telling p, if not nil, how RunOnce
// progresses.
func (r *relay) newSchedulerWith(p deliver.Progress) *deliver.Scheduler {
	d := &r.cfg.Delivery
	opts := deliver.Options{
		Progress:              p,
		Spool:                 r.spool,
		Upstream:              r.cfg.Upstream(),
		Dial:                  r.dialer(),
		Connections:           d.Connections,
		MessagesPerConnection: d.MessagesPerConnection,
		MinBackoff:            d.MinBackoff,
		MaxBackoff:            d.MaxBackoff,
		Pace: deliver.PaceOptions{Suspend: d.PaceSuspend, MaxSuspend: d.PaceMaxSuspend, Delay: d.PaceDelay,
			MaxDelay: d.PaceMaxDelay, QuotaWindow: d.QuotaWindow},
		Grace:          r.cfg.SMTP.ShutdownGrace,
		Log:            r.log,
		MailLog:        r.maillog,
		MaxLifetime:    deliver.Lifetime(d.MaxQueueLifetime),
		BounceLifetime: deliver.Lifetime(d.BounceQueueLifetime),
		DelayWarning:   d.DelayWarning,
		ClientFilter:   r.clientFilter,
		ContentFilter:  r.cfg.Routing.ContentFilter,
		LogNames:       r.cfg.TransportLogNames(),
	}
	if r.router != nil {
		opts.Router = r.router
	}
	if d.Bounces {
		remoteMTA, _, _ := net.SplitHostPort(r.cfg.Upstream())
		opts.Notices = &bounce.Notifier{Spool: r.spool, ReportingMTA: r.cfg.Domain, RemoteMTA: remoteMTA,
			MaxQueueLifetime: d.MaxQueueLifetime, MaxReturnSize: d.BounceSizeLimit, Postmaster: d.DoubleBounceRecipient, MailLog: r.maillog}
	}
	// Pace and alert verdicts by the enforcer's rules (the built-in ones when it is off).
	verdicts := deliver.EngineVerdicts{Policy: enforce.Policy{Rules: enforce.DefaultRules()}}
	if r.enforcer != nil {
		opts.Refusals, opts.Holds = enforcerRefusals{r}, r.enforcer
		verdicts.Policy.Rules = r.enforcer.Policy.Rules
	}
	opts.Verdicts = verdicts
	if r.srs != nil {
		opts.Senders = r.srs
	}
	return deliver.New(opts)
}

// Reload is reload.Loader: the tables and files that changed (all of them, with all).
func (r *relay) Reload(all bool) {
	log, end := r.said.Pass(r.log, all) // a bad file is said once, not every pass
	defer end()
	r.reloadTables(log)
	r.secrets.Reload(all, log) // a removed account stops logging in
	r.popSecrets.Reload(all, log)
	r.clientSecrets.Reload(all, log) // a rotated smarthost password
	if r.router != nil {
		r.router.ReloadTables(all, log)
	}
	r.enforcer.ReloadFiles()
}
