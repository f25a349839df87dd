package main

import (
	"context"
	"errors"
	"os"

	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/dkim"
	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/smtpd"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// enforcePaths fills in the enforcement files that live in the spool by
// default. It runs before the policy is built, which checks the
// blocked-domain table at MAIL FROM (see buildPolicy).
func enforcePaths(cfg *config.Config) error {
	e := &cfg.Enforce
	if !cfg.Enforcing() {
		return nil
	}
	f, err := enforce.Files{SenderAccess: e.SenderAccess, Welcomelist: e.Welcomelist, Bans: e.Bans}.Prepare(cfg.Spool.Dir)
	e.SenderAccess, e.Welcomelist, e.Bans = f.SenderAccess, f.Welcomelist, f.Bans
	return err
}

// checkIdleFiles parses, for --check, the enforcer's files a mode that does
// not enforce never reads: a broken one shows now, not when the mode changes.
func checkIdleFiles(cfg *config.Config) error {
	if cfg.Enforcing() {
		return nil // read by newEnforcer
	}
	rules, filter, welcome := enforce.CheckFiles(cfg.Enforce.Rules, cfg.Enforce.ReplyFilter, cfg.Enforce.Welcomelist)
	return errors.Join(config.Setting("enforce.rules", rules), config.Setting("enforce.reply_filter", filter), config.Setting("enforce.welcomelist", welcome))
}

// newEnforcer builds the enforcer when the relay forwards and enforcement
// is not turned off; nil otherwise.
func (r *relay) newEnforcer() (*enforce.Enforcer, error) {
	e := &r.cfg.Enforce
	if !r.cfg.Enforcing() {
		return nil, nil
	}
	en := &enforce.Enforcer{
		SenderAccess:         e.SenderAccess,
		BanTime:              e.BanTime,
		Spool:                r.spool,
		RelayAddress:         e.RelayAddress,
		EncapsulateRateLimit: e.EncapsulateRateLimit,
		Admin:                e.Mail,
		MailLog:              r.maillog,
		Log:                  r.log,
	}
	var rulesErr, filterErr error
	if en.Policy, rulesErr, filterErr = enforce.OpenPolicy(e.Rules, e.ReplyFilter); rulesErr != nil {
		return nil, config.Setting("enforce.rules", rulesErr)
	} else if filterErr != nil {
		return nil, config.Setting("enforce.reply_filter", filterErr)
	}
	enforce.WatchPolicyFiles(en.Policy, r.log) // edits are in force without a restart
	en.Policy.NeverBlock = r.cfg.NeverBlock()
	en.Policy.TrustedUpstreams = r.cfg.TrustedUpstreams()
	if r.srs != nil {
		// Only an SRS sender that verifies with the relay's own secret is
		// read as another domain's.
		en.Policy.SRS = r.srs
	}
	if en.RelayAddress == "" {
		en.RelayAddress = "postmaster@" + r.cfg.Domain
	}
	var err error
	if en.Bans, err = enforce.OpenBans(e.Bans, nil); err != nil {
		return nil, config.Setting("enforce.bans", err)
	}
	en.Bans.Delay, en.Bans.Width = e.BanDelay, enforce.BanWidth{IPv4: e.BanIPv4PrefixLength, IPv6: e.BanIPv6PrefixLength}
	en.ReloadBans(r.log) // warns of bad lines; what is in force now, for the unban lines
	if r.welcome, err = enforce.OpenWelcomelist(e.Welcomelist); err != nil {
		return nil, config.Setting("enforce.welcomelist", err)
	}
	en.Policy.Welcome = r.welcome
	var sink enforce.BanSink
	if e.BanLog != "" {
		host, _ := os.Hostname()
		fb := &enforce.FileBans{Path: e.BanLog, Host: host}
		if err := fb.Check(); err != nil {
			return nil, config.Setting("enforce.ban_log", err)
		}
		sink = fb
	}
	en.BanLines = enforce.NewBanWriter(sink, r.maillog, nil, r.log).OnWritten(en.NoteBan).Resume(en.Bans.List())
	if k := r.cfg.DKIM; k.Domain != "" {
		// Encapsulated copies are signed as the relay's domain.
		if en.Signer, err = dkim.LoadSigner(k.Domain, k.Selector, k.Key); err != nil {
			return nil, config.Setting("dkim.key", err)
		}
	}
	return en, nil
}

// enforcerRefusals gives the scheduler's refused recipients to the
// enforcer (enforce.Enforcer.Refused, which decides with enforce.Decide):
// the plan's key is recorded in the envelope so that the same refusal on a
// retry is not acted on twice, and the outcome decides the recipient.
type enforcerRefusals struct{ r *relay }

func (er enforcerRefusals) Refused(res deliver.Result) deliver.Effect {
	up := enforce.Upstream{Reply: res.Reply, Host: res.Relay, Stage: res.Stage}
	out := er.r.enforcer.Refused(context.Background(),
		enforce.QueuedRefusal(res.Env, res.Rcpt.Addr, res.ContentPath, up))
	if !out.Plan.Repeat {
		res.Env.Enforced = append(res.Env.Enforced, out.Plan.Key)
	}
	eff := deliver.Effect{Hold: out.Hold}
	if out.Settle == spool.Sent || out.Settle == spool.Bounced {
		eff.Settle, eff.Reply = out.Settle, out.SettleReply
	}
	return eff
}

// enforcerProxy adapts the enforcer to the SMTP server's proxy hook.
type enforcerProxy struct{ en *enforce.Enforcer }

func (p enforcerProxy) ProxyRefusal(ctx context.Context, pr *smtpd.ProxyRefusal) reply.Reply {
	out := p.en.ActOnProxied(ctx, enforce.Refusal{
		ID: pr.ID, Client: pr.Client, ClientName: pr.ClientName, From: pr.From, To: pr.To,
		Upstream: enforce.Upstream{Reply: pr.Reply, Host: pr.Relay, Stage: pr.Stage}, ContentPath: pr.ContentPath,
	})
	if out.Heard.Code == 0 {
		return pr.Reply
	}
	return out.Heard
}
