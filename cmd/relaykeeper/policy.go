package main

import (
	"errors"
	"log/slog"

	"github.com/relaykeeper/relaykeeper/internal/auth"
	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/dnsbl"
	"github.com/relaykeeper/relaykeeper/internal/policy"
	"github.com/relaykeeper/relaykeeper/internal/route"
	"github.com/relaykeeper/relaykeeper/internal/table"
	"github.com/relaykeeper/relaykeeper/internal/verify"
)

// buildPolicy makes the relay policy from the configuration: the restriction
// lists with their tables, blocklists, the verifier and sender login maps,
// and the tables it opened, for SIGHUP and the reload timer to re-read.
func buildPolicy(cfg *config.Config, secrets *auth.ServerFile, welcome policy.Welcomer, log *slog.Logger) (*policy.Engine, *table.Set, error) {
	p := &cfg.Policy
	tables := &table.Set{Warn: func(w string) { log.Warn("lookup table: " + w) }}
	opts := policy.Options{
		RelayDomains:       p.RelayDomains,
		RelayRecipientMaps: p.RelayRecipientMaps,
		RelayClientCerts:   p.RelayClientCerts,
		Postmaster:         "postmaster@" + cfg.Domain,
		Client:             p.ClientRestrictions,
		Helo:               p.HeloRestrictions,
		Sender:             p.SenderRestrictions,
		Relay:              p.RelayRestrictions,
		Recipient:          p.RecipientRestrictions,
		Data:               p.DataRestrictions,
		EndOfData:          p.EndOfDataRestrictions,
		RestrictionClasses: p.RestrictionClasses,
		Mail:               cfg.MailRestrictions(),
		MailExempt:         welcome, // the welcomelist's clients: never the enforcer's blocks
		Tables:             policy.SetTables{Set: tables},
		RecipientDelimiter: cfg.RecipientDelimiter,
		Blocklists:         rblZones{server: p.DNSServer, log: log},
		DNSLists:           rblZones{server: p.DNSServer, log: log},
		MailDomains:        &route.Resolver{Server: p.DNSServer},
		Log:                log,
	}
	var errs []error
	if secrets != nil && cfg.TrustsSecretsFile() {
		// E-MailRelay: only --server-auth's "server none" addresses skip logging in.
		opts.Trusted, opts.RemoteClients = secrets, cfg.SMTP.RemoteClients
	} else {
		opts.MyNetworkSpec, opts.NetworkTables = p.MyNetworks, tables
	}
	if p.DNSBL != "" {
		c, err := dnsbl.ParseEmailRelay(p.DNSBL)
		if err != nil {
			errs = append(errs, config.Setting("policy.dnsbl", err))
		} else {
			if c.Server == "" {
				c.Server = p.DNSServer
			}
			opts.DNSBL = dnsbl.Blocklist{C: dnsbl.New(c), Log: log}
		}
	}
	if p.AddressVerifier != "" {
		v, err := verify.New(p.AddressVerifier, p.VerifierTimeout)
		if err != nil {
			errs = append(errs, config.Setting("policy.address_verifier", err))
		} else {
			v.Logger = log
			opts.Verifier = policy.AddressVerifier{V: v, Domain: cfg.Domain}
		}
	}
	if f := cfg.Auth.SenderLoginMaps; f != "" {
		sl, err := auth.LoadSenderLogins(f)
		if err != nil {
			errs = append(errs, config.Setting("auth.sender_login_maps", err))
		} else {
			opts.SenderOwners = sl
			opts.RejectSenderLoginMismatch = cfg.Auth.RejectSenderLoginMismatch
		}
	}
	e, err := policy.New(opts)
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return nil, nil, errors.Join(errs...)
	}
	return e, tables, nil
}

// rblZones makes reject_rbl_client's checks, one zone each, through policy.dns_server.
type rblZones struct {
	server string
	log    *slog.Logger
}

func (z rblZones) Open(zone string) (policy.Blocklist, error) { return z.open(zone, false) }

func (z rblZones) OpenAllow(zone string) (policy.Blocklist, error) { return z.open(zone, true) }

func (z rblZones) OpenDomain(zone string, allow bool) (policy.DomainList, error) {
	return z.open(zone, allow)
}

func (z rblZones) open(zone string, allow bool) (dnsbl.Blocklist, error) {
	c, err := dnsbl.ParseRBLSpec(zone)
	if err != nil {
		return dnsbl.Blocklist{}, err
	}
	return dnsbl.Blocklist{C: dnsbl.New(dnsbl.Config{Zones: []dnsbl.Zone{c}, Threshold: 1, Server: z.server}), Log: z.log, Allow: allow}, nil
}
