package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/relaykeeper/relaykeeper/internal/auth"
	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/route"
)

// routingConfigured reports whether the configuration asks for Postfix-style
// routing; without it everything goes to forward.to, E-MailRelay's way.
func routingConfigured(cfg *config.Config) bool { return cfg.Routed() }

// router adapts route.Router and route.Resolver to the scheduler: routes
// become destination keys with their limits, and sessions are opened to the
// destination's hosts in MX order with the transport's own HELO, bind
// address, TLS and AUTH.
type router struct {
	rt    *route.Router
	res   *route.Resolver
	r     *relay
	mu    sync.Mutex             // guards below
	seen  map[string]route.Route // key -> route, for Dial
	auths map[string]func([]string) (sasl.Client, error)
}

func (r *relay) newRouter() (*router, error) {
	cfg := &r.cfg
	opts := route.Options{
		Transports:          map[string]*route.Transport{},
		DefaultTransport:    cfg.Routing.DefaultTransport,
		TransportMaps:       cfg.Routing.TransportMaps,
		SenderDependentMaps: cfg.Routing.SenderDependentMaps,
	}
	if cfg.Forward.To != "" {
		// forward.to is E-MailRelay's smarthost: used as is, no MX lookup.
		host, port, err := net.SplitHostPort(r.upstream())
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
	rt, err := route.New(opts)
	if err != nil {
		return nil, err
	}
	return &router{rt: rt, r: r, res: &route.Resolver{Server: cfg.Routing.DNSServer, Timeout: 10 * time.Second},
		seen: map[string]route.Route{}, auths: map[string]func([]string) (sasl.Client, error){}}, nil
}

func (a *router) Route(sender, rcpt string) deliver.Route {
	rt := a.rt.Route(sender, rcpt)
	d := deliver.Route{Key: rt.Key, ConcurrencyLimit: a.r.cfg.Routing.ConcurrencyLimit,
		RecipientLimit: a.r.cfg.Routing.RecipientLimit}
	switch {
	case rt.Error != "" && rt.Temporary():
		d.Error = reply.New(450, rt.Error)
	case rt.Error != "":
		d.Error = reply.New(550, rt.Error)
	case rt.Discarded():
		d.Discard = true
	}
	if t := rt.Transport; t != nil {
		if t.ConcurrencyLimit > 0 {
			d.ConcurrencyLimit = t.ConcurrencyLimit
		}
		if t.RecipientLimit > 0 {
			d.RecipientLimit = t.RecipientLimit
		}
		d.RateDelay = t.RateDelay
		d.InitialConcurrency = t.InitialConcurrency
	}
	a.mu.Lock()
	a.seen[rt.Key] = rt
	a.mu.Unlock()
	return d
}

// Dial tries the destination's hosts in order until one answers.
func (a *router) Dial(ctx context.Context, d deliver.Route) (*remote.Conn, string, error) {
	a.mu.Lock()
	rt, ok := a.seen[d.Key]
	a.mu.Unlock()
	if !ok {
		return nil, "", fmt.Errorf("no route for %s", d.Key)
	}
	hosts, err := a.res.Hosts(ctx, rt)
	if err != nil {
		var de *route.DNSError
		if errors.As(err, &de) && !de.Temporary() {
			// No such domain, a null MX, no address: no retry will help.
			code := de.Code
			if code == "" {
				code = "5.1.2"
			}
			return nil, rt.Host, &remote.Error{Stage: "dns", Perm: true,
				Reply: reply.Reply{Code: 550, Enhanced: code, Lines: []string{code + " " + err.Error()}}}
		}
		return nil, rt.Host, &remote.Error{Stage: "dns", Err: err}
	}
	opts, err := a.options(rt)
	if err != nil {
		return nil, rt.Host, &remote.Error{Stage: "connect", Err: err}
	}
	var last error
	for _, h := range hosts {
		c, err := remote.Dial(ctx, h, opts)
		if err == nil {
			return c, rt.Host + "[" + h + "]", nil
		}
		last = err
		var re *remote.Error
		if errors.As(err, &re) && re.Perm {
			// A host that refuses for good (a 554 greeting): Postfix
			// tries the next MX too.
			continue
		}
	}
	return nil, rt.Host, last
}

// options are the session settings for a route's transport.
func (a *router) options(rt route.Route) (remote.Options, error) {
	opts := a.r.remote
	t := rt.Transport
	if t == nil {
		return opts, nil
	}
	if t.HeloName != "" {
		opts.Helo = t.HeloName
	}
	if t.BindAddress != "" {
		ip := net.ParseIP(strings.Trim(t.BindAddress, "[]"))
		if ip == nil {
			return opts, fmt.Errorf("transport %s: bind_address %q is not an IP address", t.Name, t.BindAddress)
		}
		opts.LocalAddr = &net.TCPAddr{IP: ip}
	}
	switch t.TLS {
	case "none":
		opts.TLS = remote.TLSNone
	case "may":
		opts.TLS, opts.TLSConfig = remote.TLSOpportunistic, &tls.Config{InsecureSkipVerify: true, ServerName: rt.Host}
	case "encrypt":
		opts.TLS, opts.TLSConfig = remote.TLSRequired, &tls.Config{InsecureSkipVerify: true, ServerName: rt.Host}
	case "verify", "secure":
		opts.TLS, opts.TLSConfig = remote.TLSRequired, &tls.Config{ServerName: rt.Host}
	case "wrapper":
		opts.TLS, opts.TLSConfig = remote.TLSImplicit, &tls.Config{InsecureSkipVerify: true, ServerName: rt.Host}
	}
	if t.Auth != "" {
		a.mu.Lock()
		f, ok := a.auths[t.Name]
		a.mu.Unlock()
		if !ok {
			s, err := auth.LoadSecrets(t.Auth)
			if err != nil {
				return opts, fmt.Errorf("transport %s: %w", t.Name, err)
			}
			s.SetLog(a.r.log) // OAuth2 refresh failures are alerts
			f, _ = s.ClientAuth("")
			a.mu.Lock()
			a.auths[t.Name] = f
			a.mu.Unlock()
		}
		opts.Auth = f
	}
	return opts, nil
}
