package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/auth"
	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/dnsbl"
	"github.com/relaykeeper/relaykeeper/internal/policy"
	"github.com/relaykeeper/relaykeeper/internal/table"
	"github.com/relaykeeper/relaykeeper/internal/verify"
)

// buildPolicy makes the relay policy from the configuration: the restriction
// lists with their tables, blocklists, the verifier and sender login maps.
// The tables it opened come back so that SIGHUP and the reload timer can
// re-read them.
func buildPolicy(cfg *config.Config, secrets *auth.Secrets, log *slog.Logger) (*policy.Engine, *table.Set, error) {
	p := &cfg.Policy
	tables := &table.Set{}
	opts := policy.Options{
		RelayDomains: p.RelayDomains,
		Client:       p.ClientRestrictions,
		Helo:         p.HeloRestrictions,
		Sender:       p.SenderRestrictions,
		Relay:        p.RelayRestrictions,
		Recipient:    p.RecipientRestrictions,
		Mail:         mailRestrictions(cfg),
		Tables:       policy.SetTables{Set: tables},
		Blocklists:   rblZones{server: p.DNSServer, log: log},
		Log:          log,
	}
	var errs []error
	_, explicit := cfg.Origin.Lines["policy.mynetworks"]
	if _, sw := cfg.Origin.Switches["policy.mynetworks"]; sw {
		explicit = true
	}
	if secrets != nil && !explicit {
		// E-MailRelay: with --server-auth, only the secrets file's
		// "server none" addresses may send without logging in.
		opts.Trusted = secrets
	} else {
		nets, tabs, err := policy.ParseNetworks(p.MyNetworks, tables)
		if err != nil {
			errs = append(errs, err)
		}
		opts.MyNetworks, opts.MyNetworkTables = nets, tabs
	}
	if p.DNSBL != "" {
		c, err := dnsbl.ParseEmailRelay(p.DNSBL)
		if err != nil {
			errs = append(errs, fmt.Errorf("--dnsbl: %w", err))
		} else {
			if c.Server == "" {
				c.Server = p.DNSServer
			}
			opts.DNSBL = blocklist{dnsbl.New(c), log}
		}
	}
	if p.AddressVerifier != "" {
		v, err := verify.New(p.AddressVerifier, p.VerifierTimeout)
		if err != nil {
			errs = append(errs, fmt.Errorf("--address-verifier: %w", err))
		} else {
			v.Logger = log
			opts.Verifier = verifier{v: v, domain: cfg.Domain}
		}
	}
	if f := cfg.Auth.SenderLoginMaps; f != "" {
		sl, err := auth.LoadSenderLogins(f)
		if err != nil {
			errs = append(errs, fmt.Errorf("auth.sender_login_maps: %w", err))
		} else {
			opts.SenderOwners = senderOwners{sl}
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

// rblZones makes the policy's reject_rbl_client checks: one zone each,
// asked through the configured DNS server.
type rblZones struct {
	server string
	log    *slog.Logger
}

func (z rblZones) Open(zone string) (policy.Blocklist, error) {
	c, err := dnsbl.ParseRBLSpec(zone)
	if err != nil {
		return nil, err
	}
	return blocklist{dnsbl.New(dnsbl.Config{Zones: []dnsbl.Zone{c}, Threshold: 1, Server: z.server}), z.log}, nil
}

// blocklist adapts a DNSBL checker to the policy.
type blocklist struct {
	c   *dnsbl.Checker
	log *slog.Logger
}

func (b blocklist) Listed(ctx context.Context, ip netip.Addr) (bool, string, error) {
	res, err := b.c.Check(ctx, ip)
	if err != nil {
		return false, "", err
	}
	for _, f := range res.Failures {
		b.log.Warn("blocklist gave no usable answer", "zone", f.Zone, "client", ip, "err", f.Err, "timed_out", res.TimedOut)
	}
	if res.TimedOut && !res.Listed {
		b.log.Warn("blocklist lookup timed out; client let through (fail open)", "client", ip, "server", b.c.Server())
	}
	return res.Listed, res.RejectText(ip), nil
}

// verifier adapts E-MailRelay's address verifier to the policy.
type verifier struct {
	v      *verify.Verifier
	domain string
}

func (v verifier) Verify(ctx context.Context, req *policy.Request) policy.Decision {
	mech := req.AuthMech
	if mech == "" {
		mech = "none"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	r := v.v.Verify(ctx, verify.Request{Recipient: req.Recipient, Sender: req.Sender, ClientAddr: req.ClientAddr,
		Domain: v.domain, AuthMechanism: mech, AuthID: req.AuthID})
	const rule = "address_verifier"
	switch r.Kind {
	case verify.Local:
		return policy.Decision{Mailbox: r.Mailbox, Rule: rule}
	case verify.Remote:
		return policy.Decision{Address: r.Address, Rule: rule}
	case verify.Reject:
		return policy.Decision{Verdict: policy.Reject, Code: r.Code, Enhanced: r.EnhancedCode, Text: r.Text, Rule: rule}
	case verify.Drop:
		return policy.Decision{Verdict: policy.Drop, Rule: rule}
	}
	return policy.Decision{Verdict: policy.Defer, Code: r.Code, Enhanced: r.EnhancedCode, Text: r.Text, Rule: rule}
}

type senderOwners struct{ s *auth.SenderLogins }

func (o senderOwners) Owners(sender string) []string {
	owners, ok := o.s.Owners(sender)
	if !ok {
		return nil
	}
	return owners
}

// mailRestrictions are checked at MAIL FROM: the enforcer's blocked sender
// domains, "enforced at MAIL FROM from then on".
func mailRestrictions(cfg *config.Config) []string {
	if cfg.Enforce.SenderAccess == "" || cfg.Enforce.Disabled {
		return nil
	}
	return []string{"check_sender_access texthash:" + cfg.Enforce.SenderAccess}
}
