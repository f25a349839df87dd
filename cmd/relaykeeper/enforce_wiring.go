package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/logfile"
	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/smtpd"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// enforcePaths fills in the enforcement files that live in the spool by
// default. It runs before the policy is built, which checks the
// blocked-domain table at MAIL FROM (see buildPolicy).
func enforcePaths(cfg *config.Config) error {
	e := &cfg.Enforce
	if e.Disabled || cfg.Forward.To == "" || cfg.Mode == config.ModeClient {
		return nil
	}
	// The enforcer's state lives beside the messages, in a dot directory
	// that spool tools pass over (E-MailRelay's copy: filter among them).
	dir := filepath.Join(cfg.Spool.Dir, ".enforce")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("enforce: %w", err)
	}
	if e.SenderAccess == "" {
		e.SenderAccess = filepath.Join(dir, "sender_access")
	}
	if e.Welcomelist == "" {
		e.Welcomelist = filepath.Join(dir, "welcomelist")
	}
	if e.Bans == "" {
		e.Bans = filepath.Join(dir, "bans")
	}
	if _, err := os.Stat(e.SenderAccess); os.IsNotExist(err) {
		hdr := "# Sender domains blocked by relaykeeper's enforcer (Postfix access(5) format).\n" +
			"# Each entry follows a comment saying when and why. Edit freely.\n"
		if err := os.WriteFile(e.SenderAccess, []byte(hdr), 0o644); err != nil {
			return fmt.Errorf("enforce.sender_access: %w", err)
		}
	}
	return nil
}

// newEnforcer builds the enforcer when the relay forwards and enforcement
// is not turned off; nil otherwise.
func (r *relay) newEnforcer() (*enforce.Enforcer, error) {
	e := &r.cfg.Enforce
	if e.Disabled || r.cfg.Forward.To == "" || r.cfg.Mode == config.ModeClient {
		return nil, nil
	}
	en := &enforce.Enforcer{
		SenderAccess: e.SenderAccess,
		NeverBlock:   append(slices.Clone(e.NeverBlock), r.cfg.Domain),
		BanTime:      e.BanTime,
		Spool:        r.spool,
		RelayAddress: e.RelayAddress,
		Admin:        e.Mail,
		MailLog:      r.maillog,
		Log:          r.log,
		OnQueued: func() {
			if r.sched != nil {
				r.sched.Kick(false)
			}
		},
		// The sender_access table is read again by the reloader, not in
		// the delivery worker that blocked the domain.
		OnBlocked: r.reloads.Request,
	}
	if en.RelayAddress == "" {
		en.RelayAddress = "postmaster@" + r.cfg.Domain
	}
	en.NeverBlock = append(en.NeverBlock, r.cfg.Policy.RelayDomains...)
	var err error
	if e.Rules != "" {
		if en.Rules, err = enforce.LoadRules(e.Rules); err != nil {
			return nil, fmt.Errorf("--enforce-rules: %w", err)
		}
	} else {
		en.Rules = enforce.DefaultRules()
	}
	if e.ReplyFilter != "" {
		if en.Filter, err = enforce.LoadReplyFilter(e.ReplyFilter); err != nil {
			return nil, fmt.Errorf("enforce.reply_filter: %w", err)
		}
	} else {
		en.Filter = enforce.DefaultReplyFilter()
	}
	if en.Bans, err = enforce.OpenBans(e.Bans, nil); err != nil {
		return nil, fmt.Errorf("enforce.bans: %w", err)
	}
	en.Bans.Delay = e.BanDelay
	for _, p := range en.Bans.Problems() {
		r.log.Warn("ban list line skipped", "err", p)
	}
	if en.Welcome, err = enforce.OpenWelcomelist(e.Welcomelist); err != nil {
		return nil, fmt.Errorf("--welcomelist: %w", err)
	}
	if e.BanLog != "" {
		f, err := logfile.Open(e.BanLog)
		if err != nil {
			return nil, fmt.Errorf("enforce.ban_log: %w", err)
		}
		r.files = append(r.files, f)
		en.BanLog = f
	}
	return en, nil
}

// banned is the SMTP server's connect-time check.
func (r *relay) banned(ip netip.Addr) (string, time.Time, bool) {
	b, ok := r.enforcer.Bans.Banned(ip)
	if !ok {
		return "", time.Time{}, false
	}
	return b.Reason, b.Until, true
}

// enforcerRefusals gives the scheduler's refused recipients to the
// enforcer: each once per distinct refusal (Envelope.Enforced remembers,
// across retries and restarts), and the outcome decides the recipient.
// It stands until the enforcement engine implements deliver.Refusals.
type enforcerRefusals struct{ r *relay }

func (er enforcerRefusals) Refused(res deliver.Result) deliver.Effect {
	r := er.r
	en := r.enforcer
	rep := enforce.Reply{Code: res.Reply.Code, Enhanced: res.Reply.Enhanced, Text: res.Reply.String(),
		Host: res.Relay, Stage: res.Stage}
	key := enforce.Key(en.Rules.Classify(rep), res.Rcpt.Addr, rep)
	if slices.Contains(res.Env.Enforced, key) {
		return deliver.Effect{}
	}
	res.Env.Enforced = append(res.Env.Enforced, key)
	out := en.Act(context.Background(), enforce.Refusal{
		ID: res.Env.ID, Client: clientAddr(res.Env.Client), ClientName: res.Env.ClientName, From: res.Env.From, To: []string{res.Rcpt.Addr},
		Reply: rep, ContentPath: r.spool.ContentPath(res.Env.ID),
	})
	r.metrics.Verdict(rep.Code, out.Verdict.Action.String())
	eff := deliver.Effect{Hold: out.Banned}
	heard, _ := reply.ParseLine(out.Heard)
	switch {
	case out.Encapsulated:
		// The recipient has the message, as an attachment.
		eff.Settle, eff.Reply = spool.Sent, "encapsulated after: "+rep.Text
	case heard.Permanent() && !res.Reply.Permanent():
		// A temporary spam refusal made permanent, so that the sender
		// stops retrying (the bounce carries the rewritten reply).
		eff.Settle, eff.Reply = spool.Bounced, out.Heard
	}
	return eff
}

// enforcerProxy adapts the enforcer to the SMTP server's proxy hook.
type enforcerProxy struct{ r *relay }

func (p enforcerProxy) ProxyRefusal(ctx context.Context, pr *smtpd.ProxyRefusal) reply.Reply {
	rep := enforce.Reply{Code: pr.Reply.Code, Enhanced: pr.Reply.Enhanced, Text: pr.Reply.String(),
		Host: pr.Relay, Stage: pr.Stage}
	out := p.r.enforcer.Act(ctx, enforce.Refusal{
		Client: pr.Client, ClientName: pr.ClientName, From: pr.From, To: pr.To, Reply: rep, ContentPath: pr.ContentPath,
	})
	p.r.metrics.Verdict(rep.Code, out.Verdict.Action.String())
	if out.Heard == rep.Text {
		return pr.Reply
	}
	heard, err := reply.ParseLine(out.Heard)
	if err != nil {
		return pr.Reply
	}
	return heard
}

func clientAddr(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap()
	}
	a, _ := netip.ParseAddr(s)
	return a.Unmap()
}

var _ io.Writer = (*os.File)(nil)
