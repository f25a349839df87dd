package companion

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/mail"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/hostport"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/postfixlog"
	"github.com/relaykeeper/relaykeeper/internal/srs"
)

// senderDomain is the domain of an address such as "Relay
// <postmaster@relay.example>".
func senderDomain(addr string) string {
	if a, err := mail.ParseAddress(addr); err == nil {
		addr = a.Address
	}
	return enforce.SenderDomain(addr, nil)
}

// Config is what Run needs: the companion's Options, its files, and the
// log follower's switches.
type Config struct {
	Options
	// Rules is a rules file ("": the built-in Gmail rules). Welcomelist
	// is the welcomelist, created with the local and private networks if
	// missing (in test mode a temporary default list is used instead);
	// "" is DefaultWelcomelist, whose directory is made if missing (not
	// in test mode), while a file named in a missing directory is refused.
	Rules, Welcomelist string
	// BanLog, if set, gets the ban lines instead of syslog.
	BanLog string
	// TrustedUpstreams are the relays (names or addresses, as Postfix
	// logs relay=name[ip]:port) whose refusals may ban a client or block
	// a domain, besides Google's mail servers: Postfix's relayhost unless
	// it is Google. Any other relay's refusal is only reported.
	TrustedUpstreams []string
	// SRSSecret is postsrsd's secret file and SRSDomain its SRS_DOMAIN
	// (default: the domain of Sender): an SRS sender is read as another
	// domain's only when its hash verifies with that secret.
	SRSSecret, SRSDomain string
	// NeverBlock are domains never blocked besides the relay's own (the
	// freemail providers, config.DefaultNeverBlock, as for the relay): a
	// spammer's forged sender must not cut a provider's users off.
	NeverBlock  []string
	Reinjection postfixlog.Reinjection
	// FilterUsers are the users (names or uids, separated by commas) that
	// content filters run as, re-injecting with sendmail (--filter-user):
	// see postfixlog.Tracker.FilterUIDs.
	FilterUsers string
	// Log is Postfix's mail log; State where the position and what was
	// done are kept.
	Log, State    string
	Once, FromEnd bool
}

// Run follows the mail log until ctx ends (with Once, until the log's
// end) and acts on every refusal. actions gets one line per action; the
// ban lines go to syslog, or to stderr when syslog is unavailable; prog,
// if not nil, shows -v's progress. The bans still waiting for their delay
// are written before Run returns.
func Run(ctx context.Context, cfg Config, actions, stderr io.Writer, prog *Progress, diag *slog.Logger) error {
	// SIGHUP is caught from the start, not once the files are read: the
	// start asks postconf (seconds on a busy machine), and a unit's
	// ExecReload meanwhile must not end the process. reloadOnHUP acts on
	// it, and on one that came before.
	hups := make(chan os.Signal, 1)
	signal.Notify(hups, syscall.SIGHUP)
	defer signal.Stop(hups)
	policy := enforce.Policy{Rules: enforce.DefaultRules(), TrustedUpstreams: cfg.TrustedUpstreams}
	if cfg.Rules != "" {
		rs, err := enforce.LoadRules(cfg.Rules)
		if err != nil {
			return err
		}
		policy.Rules = rs
	}
	wlPath := cfg.Welcomelist
	if wlPath == "" {
		wlPath = DefaultWelcomelist
		if !cfg.Test {
			// relay-enforcer's list lives next to the script, in a
			// directory that always exists; /etc/relaykeeper does not
			// on a Postfix host where the binary was copied in (no
			// make install). A failure is OpenWelcomelist's to report.
			os.MkdirAll(filepath.Dir(wlPath), 0o755)
		}
	}
	if _, err := os.Stat(wlPath); errors.Is(err, os.ErrNotExist) && cfg.Test {
		// Test mode changes nothing: the default list, in a temporary file.
		dir, err := os.MkdirTemp("", "relaykeeper-welcomelist-")
		if err != nil {
			return fmt.Errorf("companion: %w", err)
		}
		defer os.RemoveAll(dir)
		wlPath = filepath.Join(dir, "welcomelist")
	}
	wl, err := enforce.OpenWelcomelist(wlPath)
	if err != nil {
		return err
	}
	policy.Welcome = wl // the only authority on who is exempt
	// No ban of a network covers a welcomelisted or trusted neighbour.
	cfg.Spare = &enforce.Spared{Welcome: wl, Nets: postfixMynetworks(diag)}
	// This relay's own domains are never blocked: with postsrsd every
	// forwarded sender is an SRS address of the relay's domain.
	own := cfg.SRSDomain
	if own == "" {
		own = senderDomain(cfg.Sender)
	}
	policy.NeverBlock = append([]string{own, senderDomain(cfg.Sender)}, cfg.NeverBlock...)
	policy.NeverBlock = append(policy.NeverBlock, postfixOwnDomains(diag)...)
	policy.NeverBlockNow = postfixCanonical(diag)
	if cfg.SRSSecret != "" {
		secrets, err := srs.LoadSecrets(cfg.SRSSecret)
		if err != nil {
			return err
		}
		rw, err := srs.New(own, secrets)
		if err != nil {
			return err
		}
		policy.SRS = rw
	}

	var bans *enforce.BanWriter
	stopBans := func() {}
	if !cfg.Test {
		fb := &enforce.FileBans{Path: cfg.BanLog, Host: cfg.Host}
		if err := fb.Check(); err != nil {
			return fmt.Errorf("--ban-log: %w", err)
		}
		var sink enforce.BanSink = fb
		if cfg.BanLog == "" {
			if sink, err = enforce.OpenSyslogBans(); err != nil {
				diag.Warn("syslog is unavailable; ban lines go to the standard error", "err", err)
				sink = &enforce.FileBans{W: stderr, Host: cfg.Host}
			}
		}
		bans = enforce.NewBanWriter(sink, nil, nil, diag)
		bctx, cancelBans := context.WithCancel(context.Background())
		bansDone := make(chan struct{})
		// The goroutine ends when Run returns, after writing the bans
		// still waiting.
		go func() { defer close(bansDone); bans.Run(bctx) }()
		stopBans = func() { cancelBans(); <-bansDone }
		defer stopBans()
	}
	uids, err := filterUIDs(cfg.FilterUsers)
	if err != nil {
		return err
	}
	enforce.WatchPolicyFiles(policy, diag)
	defer reloadOnHUP(hups, policy, wl, diag)()
	c := New(cfg.Options, policy, &postfixlog.Tracker{Reinjection: cfg.Reinjection, FilterUIDs: uids}, bans, maillog.New(actions), diag)
	st, err := postfixlog.LoadState(cfg.State)
	if err != nil {
		return err
	}
	if err := c.Restore(st.App); err != nil {
		return fmt.Errorf("state file %s: %w", cfg.State, err)
	}
	f := &postfixlog.Follower{
		Path: cfg.Log, State: cfg.State, ReadOnly: cfg.Test, Once: cfg.Once, FromEnd: cfg.FromEnd,
		Checkpoint: c.Checkpoint,
		Unsaved:    c.Unsaved,
		AtEOF:      c.AtEOF,
		Logf:       func(format string, args ...any) { diag.Warn(fmt.Sprintf(format, args...)) },
	}
	diag.Info("postfix-enforcer started", "log", cfg.Log, "state", cfg.State, "test", cfg.Test, "once", cfg.Once)
	err = f.Run(ctx, func(line string) error {
		if prog != nil {
			prog.Dot()
		}
		return c.Line(line)
	})
	if prog != nil {
		prog.BreakLine()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	// The bans still waiting are written now: the state saved last holds
	// them, and must not give them back to the next run.
	stopBans()
	if st, lerr := postfixlog.LoadState(cfg.State); lerr == nil && !cfg.Test {
		if st.App, lerr = c.Checkpoint(); lerr == nil {
			lerr = postfixlog.SaveState(cfg.State, st)
		}
		if lerr != nil {
			diag.Error("state not saved after the last ban lines", "err", lerr)
		}
	}
	// The last line says why it ended, as the relay's "stopped" does.
	reason := "the end of the log (--once)"
	if ctx.Err() != nil {
		reason = context.Cause(ctx).Error() // "terminated signal received"
	}
	diag.Info("postfix-enforcer stopped", "reason", reason)
	return nil
}

// Problems are what is wrong with the switches c holds, one line each.
func (c *Config) Problems() []string {
	var problems []string
	if c.BanDelay < 0 {
		problems = append(problems, "--ban-delay must not be negative")
	}
	if p := enforce.CheckBanWidth(c.BanWidth.IPv4, enforce.MinBanIPv4Prefix, 32); p != "" {
		problems = append(problems, "--ban-ipv4-prefix-length: "+p)
	}
	if p := enforce.CheckBanWidth(c.BanWidth.IPv6, enforce.MinBanIPv6Prefix, 128); p != "" {
		problems = append(problems, "--ban-ipv6-prefix-length: "+p)
	}
	if _, _, err := net.SplitHostPort(c.SMTP); err != nil {
		problems = append(problems, fmt.Sprintf("--smtp %q: want HOST:PORT, such as 127.0.0.1:25", c.SMTP))
	} else if err := hostport.Check(c.SMTP); err != nil {
		problems = append(problems, fmt.Sprintf("--smtp %q: %v", c.SMTP, err))
	}
	if _, err := reportRecipient(c.MailTo); c.MailTo != "" && err != nil {
		// net/mail's words ("mail: no angle-addr") are left out: they
		// describe its parser, not the address.
		problems = append(problems, fmt.Sprintf("-m %q is not an address: write one, admin@example.org, or a local user such as root", c.MailTo))
	}
	return problems
}

// reportRecipient is -m's value as the envelope takes it: the address of
// "Name <admin@example.org>", or a local user's name (relay-enforcer's
// default, root) as it stands, which Postfix qualifies with $myorigin as
// relay-enforcer's mail(1) has it done.
func reportRecipient(s string) (string, error) {
	if s != "" && !strings.ContainsAny(s, "@<>\"\t ") {
		if _, err := mail.ParseAddress(s + "@local.invalid"); err == nil {
			return s, nil
		}
	}
	a, err := mail.ParseAddress(s)
	if err != nil {
		return "", err
	}
	return a.Address, nil
}

// FillDefaults fills in what the switches left out: the host name, the
// reports' sender and the state file; -m becomes the envelope's address.
func (c *Config) FillDefaults() {
	if c.Host, _ = os.Hostname(); c.Host == "" {
		c.Host = "localhost"
	}
	if c.Sender == "" {
		c.Sender = "postmaster@" + c.Host
	}
	if c.State == "" {
		c.State = defaultStatePath(c.Log)
	}
	if to, err := reportRecipient(c.MailTo); err == nil {
		c.MailTo = to
	}
}

// DefaultWelcomelist is postfix-enforcer's welcomelist when none is named.
const DefaultWelcomelist = "/etc/relaykeeper/welcomelist"

// defaultStatePath is /var/lib/relaykeeper/postfix-enforcer.state, or, if
// that directory cannot be made, a hidden file next to the log.
func defaultStatePath(logPath string) string {
	const dir = "/var/lib/relaykeeper"
	if err := os.MkdirAll(dir, 0o750); err == nil {
		return filepath.Join(dir, "postfix-enforcer.state")
	}
	return filepath.Join(filepath.Dir(logPath), ".postfix-enforcer.state")
}

// filterUIDs gives the uids of users, as pickup logs them: a uid as it
// is, a name looked up.
func filterUIDs(users string) ([]string, error) {
	var uids []string
	for name := range strings.SplitSeq(users, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		if _, err := strconv.ParseUint(name, 10, 32); err == nil {
			uids = append(uids, name)
			continue
		}
		u, err := user.Lookup(name)
		if err != nil {
			return nil, fmt.Errorf("--filter-user %s: %w", name, err)
		}
		uids = append(uids, u.Uid)
	}
	return uids, nil
}

// reloadOnHUP makes SIGHUP read the rules file and the welcomelist again
// (each is also read again as it changes), rather than end the process as
// SIGHUP does by default: a unit's ExecReload, or a shell that started
// postfix-enforcer in the background and then closed, must not stop the
// enforcement. hups is notified of SIGHUP (Run's, from its start). The
// returned function stops acting on it.
func reloadOnHUP(hups <-chan os.Signal, p enforce.Policy, wl *enforce.Welcomelist, diag *slog.Logger) (stop func()) {
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hups:
				diag.Info("SIGHUP: re-reading the rules and the welcomelist")
				enforce.ReloadPolicyFiles(p)
				if _, err := wl.Reload(); err != nil {
					diag.Error("welcomelist not re-read; the version read before stays in force", "err", err)
				}
			case <-done:
				return
			}
		}
	}()
	return func() { close(done) }
}
