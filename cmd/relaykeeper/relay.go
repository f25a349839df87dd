package main

// The relay's construction: every component built from the configuration,
// with its dependencies passed in. main.go runs what is built here.

import (
	"cmp"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync/atomic"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/admin"
	"github.com/relaykeeper/relaykeeper/internal/auth"
	"github.com/relaykeeper/relaykeeper/internal/certreload"
	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/debugpeer"
	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/headercheck"
	"github.com/relaykeeper/relaykeeper/internal/logfile"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/memlimit"
	"github.com/relaykeeper/relaykeeper/internal/metrics"
	"github.com/relaykeeper/relaykeeper/internal/policy"
	progressbar "github.com/relaykeeper/relaykeeper/internal/progress"
	"github.com/relaykeeper/relaykeeper/internal/reload"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/rewrite"
	"github.com/relaykeeper/relaykeeper/internal/route"
	"github.com/relaykeeper/relaykeeper/internal/smtpd"
	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/internal/srs"
	"github.com/relaykeeper/relaykeeper/internal/syslogtee"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

// relay is one running relaykeeper: the parts main built and must stop.
type relay struct {
	cfg config.Config
	// stdout and stderr are the process's, injected: tests read them.
	stdout, stderr io.Writer
	// term is stderr shared with --as-client's progress bar, or nil.
	term    *progressbar.Terminal
	log     *slog.Logger
	maillog *maillog.Logger
	// files are --log-file and the mail log, reopened on SIGHUP.
	files   []*logfile.File
	spool   *spool.Spool
	sched   *deliver.Scheduler
	once    *deliver.OnceKicker      // forwards for a filter's rescan when nothing else does
	servers map[string]*smtpd.Server // by listener role
	lns     []roleListener
	// serverTLS is nil without a certificate; certs reloads it.
	serverTLS *tls.Config
	clientCAs *x509.CertPool // tls.client_ca, for permit_tls_all_clientcerts
	certs     *certreload.Reloader
	remote    remote.Options
	// secrets are the server accounts (--server-auth), popSecrets the
	// mailboxes' (--pop-auth); nil without.
	secrets, popSecrets *auth.ServerFile
	clientSecrets       *auth.ClientFile // --client-auth, re-read as the server's
	policy              *policy.Engine
	tables              *table.Set
	// canonical is the canonical(5) mapping, nil if none.
	canonical *rewrite.Canonical
	checks    *headercheck.Checks
	enforcer  *enforce.Enforcer
	welcome   *enforce.Welcomelist
	router    *route.Dialer    // nil without Postfix-style routing
	memory    *memlimit.Budget // the runtime's memory limit
	// reloads re-reads tables, in one place.
	reloads *reload.Runner
	said    reload.Said
	// serverFilter and clientFilter are --filter and --client-filter.
	serverFilter, clientFilter filter.Filter
	// events copies the mail log to the admin interface's notify sessions.
	events *admin.Events
	// throttle counts failed logins per client for SMTP AUTH and POP3.
	throttle *auth.Throttle
	// metrics counts the mail log's events, fsyncs and enforcer verdicts.
	metrics *metrics.Metrics
	started time.Time
	smtpOff atomic.Bool // the admin said "smtp disable"
	// popAddrs are POP3's listeners, "pop=ADDR", set before the admin starts.
	popAddrs []string
	// srs is nil without --srs-secret.
	srs *srs.Rewriter
	// debug is Postfix's debug_peer_list, nil when empty.
	debug *debugpeer.List
}

type roleListener struct {
	net.Listener
	role string
}

func newRelay(cfg config.Config, stdout, stderr io.Writer) (*relay, error) {
	r := &relay{cfg: cfg, stdout: stdout, stderr: stderr}
	r.reloads = reload.New(r, 5*time.Second)
	r.memory = memlimit.New(cfg.Process.MemoryLimit, cfg.Process.MemoryPerSession)
	if r.cfg.Domain == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		r.cfg.Domain = h
	}

	var term io.Writer = stderr
	if cfg.Mode == config.ModeClient && isTerminal(stderr) {
		// --as-client draws a progress bar; log lines go above it.
		r.term = progressbar.NewTerminal(stderr)
		term = r.term
	}
	logOut, err := r.openLog(cfg.Log.File, term)
	if err != nil {
		return nil, config.Setting("log.file", err)
	}
	logOut = syslogtee.Tee(logOut, cfg.Log.SyslogFacility()) // the mail log's default too
	hopts := &slog.HandlerOptions{Level: cfg.Level()}
	if cfg.Log.Format == "json" {
		r.log = slog.New(slog.NewJSONHandler(logOut, hopts))
	} else {
		r.log = slog.New(slog.NewTextHandler(logOut, hopts))
	}
	mailOut, err := r.openLog(cfg.Log.MailLog, logOut)
	if err != nil {
		return nil, config.Setting("log.mail_log", err)
	}
	if cfg.Log.Format == "json" && cfg.Log.MailLog == "" {
		// The mail log shares the diagnostic stream: one JSON object a line.
		mailOut = maillog.JSONLines(mailOut)
	}
	r.events = &admin.Events{}
	r.started = time.Now()
	r.maillog = maillog.New(io.MultiWriter(mailOut, r.events))

	if cfg.Mode == config.ModeClient {
		if err := spool.CheckDir(cfg.Spool.Dir); err != nil {
			return nil, err // a mistyped spool is no empty one
		}
	}
	if r.spool, err = spool.Open(cfg.Spool.Dir, r.log); err == nil && cfg.WritesSpool() {
		err = r.spool.CheckWritable()
	}
	if err != nil {
		return nil, config.Setting("spool.dir", fmt.Errorf("spool directory %s: %w", cfg.Spool.Dir, err))
	}
	if r.debug, err = debugpeer.New(cfg.Log.DebugPeers, cfg.Log.Verbose); err != nil {
		return nil, config.Setting("log.debug_peers", err)
	}

	if r.serverTLS, r.certs, err = certreload.ServerConfig(cfg.TLS.Certificate, cfg.TLS.Key, r.log); err != nil {
		return nil, config.Setting("tls.certificate", err)
	}
	if r.clientCAs, err = certreload.AskClientCerts(r.serverTLS, cfg.TLS.AskClientCert, cfg.TLS.ClientCA, cfg.TLS.RequireClientCert); err != nil {
		return nil, config.Setting("tls.client_ca", err)
	}
	mode, tc, err := cfg.TLS.ClientSettings().Config(r.cfg.Upstream(), cfg.Auth.ClientSecrets != "")
	if err != nil {
		return nil, err
	}
	r.remote = remote.Options{
		Helo:              r.cfg.Domain,
		ConnectTimeout:    cfg.Forward.ConnectionTimeout,
		GreetingTimeout:   cfg.Forward.PromptTimeout,
		ResponseTimeout:   cfg.Forward.ResponseTimeout,
		TLS:               mode,
		TLSConfig:         tc,
		FailOn5xxGreeting: !cfg.Delivery.Skip5xxGreeting, // smtp_skip_5xx_greeting
	}
	if a := cfg.Forward.ClientInterface; a != "" {
		r.remote.LocalAddr = &net.TCPAddr{IP: net.ParseIP(a)} // --client-interface
	}
	if f := cfg.Auth.ClientSecrets; f != "" {
		// nil for "client plain:b = =" alone: no AUTH
		if r.remote.Auth, r.clientSecrets, err = auth.OpenClientFile(f, r.log); err != nil {
			return nil, config.Setting("auth.client_secrets", err)
		}
	}
	for _, w := range cfg.IdleSettings() {
		r.log.Warn(w)
	}
	if f := cfg.Auth.ServerSecrets; f != "" {
		if r.secrets, err = auth.OpenServerFile(f, r.cfg.Domain, r.log); err != nil {
			return nil, config.Setting("auth.server_secrets", err)
		}
		if w := cfg.AuthNeverOffered(r.secrets.HasAccounts()); w != "" {
			r.log.Warn(w)
		}
	}
	if r.serverFilter, err = filter.ParseChain(cfg.Filter.Server, filter.Server, cfg.Filter.Timeout); err != nil {
		return nil, config.Setting("filter.server", err)
	}
	if r.clientFilter, err = filter.ParseChain(cfg.Filter.Client, filter.Client, cfg.Filter.Timeout); err != nil {
		return nil, config.Setting("filter.client", err)
	}
	if err := r.addMiltersAndDKIM(); err != nil {
		return nil, err
	}
	if f := cfg.SRS.SecretFile; f != "" {
		if r.srs, err = srs.Load(f, cmp.Or(cfg.SRS.Domain, r.cfg.Domain)); err != nil {
			return nil, config.Setting("srs.secret_file", err)
		}
	}
	if r.cfg.Dials() {
		rt, err := r.newRouter()
		if err != nil {
			return nil, err // route.ParamErrors, placed by config
		}
		r.router = rt
	}
	if err := cmp.Or(enforcePaths(&r.cfg), r.cfg.CheckFrontendFiles(r.log), r.cfg.CheckPidFile(), r.cfg.CheckListenNames()); err != nil {
		return nil, err
	}
	if r.enforcer, err = r.newEnforcer(); err != nil {
		return nil, err
	}
	r.metrics = r.newMetrics()
	if cfg.Mode != config.ModeClient {
		if r.policy, r.tables, err = buildPolicy(&r.cfg, r.secrets, r.welcome, r.log); err != nil {
			return nil, err
		}
		if r.canonical, err = openCanonical(r.tables, &r.cfg, r.log); err != nil {
			return nil, err
		}
		if r.enforcer != nil { // after mapping, a refusal names the owner's own domain
			r.enforcer.Policy.NeverBlockNow = r.canonical.TargetDomains
			r.enforcer.Bans.Spare = &enforce.Spared{Welcome: r.welcome, Trusted: r.policy} // never a neighbour banned
		}
		if cfg.Policy.HeaderChecks != "" || cfg.Policy.BodyChecks != "" {
			if r.checks, err = headercheck.Open(cfg.Policy.HeaderChecks, cfg.Policy.BodyChecks); err != nil {
				return nil, err // each names its key
			}
			for _, w := range r.checks.Warnings() {
				r.log.Warn("lookup table: " + w)
			}
		}
	}
	return r, nil
}

// openLog opens a log file for appending, kept open until close; path ""
// means def.
func (r *relay) openLog(path string, def io.Writer) (io.Writer, error) {
	if path == "" {
		return def, nil
	}
	f, err := logfile.Open(path)
	if err != nil {
		return nil, err
	}
	r.files = append(r.files, f)
	return f, nil
}

// reloadTables re-reads every access table whose file changed. A table
// with a bad line keeps its old contents; the error names file and line.
func (r *relay) reloadTables(log *slog.Logger) {
	if en := r.enforcer; en != nil {
		en.ReloadBans(log)
		if _, err := r.welcome.Reload(); err != nil {
			log.Error("welcomelist not reloaded; the old one stays in force", "err", err)
		}
	}
	if r.checks != nil {
		if err := r.checks.Reload(); err != nil {
			log.Error("header/body checks not reloaded; the old ones stay in force", "err", err)
		}
	}
	if r.tables == nil {
		return
	}
	if err := r.policy.ReloadLists(); err != nil {
		log.Error("mynetworks and relay_domains not reloaded; the old ones stay in force", "err", err)
	}
	for _, err := range r.tables.ReloadAll() {
		log.Error("table not reloaded; the old one stays in force", "err", err)
	}
}

// reopenLogs reopens the log files by name, so that logrotate can rename
// them and send SIGHUP instead of copying and truncating. A file that
// cannot be reopened stays in use.
func (r *relay) reopenLogs() {
	for _, f := range r.files {
		if err := f.Reopen(); err != nil {
			r.log.Error("log file not reopened; still writing to the old one", "file", f.Path(), "err", err)
		}
	}
}

func (r *relay) close() {
	for _, f := range r.files {
		f.Close()
	}
}

func (r *relay) recover() {
	rep, err := r.spool.Recover()
	r.reportRecovery(rep, err)
}

// recoveredDead reports the replay of a dead relay's journal; its messages are listed again.
func (r *relay) recoveredDead(rep spool.RecoveryReport, err error) {
	r.reportRecovery(rep, err)
	if r.sched != nil {
		r.sched.KickRecovered(false)
	}
}

// reportRecovery logs what recovery did, and each quarantined message in
// the mail log.
func (r *relay) reportRecovery(rep spool.RecoveryReport, err error) {
	for _, id := range rep.Quarantined {
		r.maillog.Quarantine(id, rep.Reasons[id])
	}
	if err != nil {
		r.log.Error("spool recovery failed", "err", err, "report", rep.String())
		return
	}
	r.log.Info("spool recovered", "dir", r.spool.Dir(), "report", rep.String())
}

// openCanonical opens [rewrite]: the address maps, masquerading and BCC.
func openCanonical(set *table.Set, cfg *config.Config, log *slog.Logger) (*rewrite.Canonical, error) {
	rw := &cfg.Rewrite
	return rewrite.Open(set, rewrite.Maps{Canonical: rw.CanonicalMaps, Sender: rw.SenderCanonicalMaps,
		Recipient: rw.RecipientCanonicalMaps, Log: log, Masquerade: rewrite.Masquerade{Domains: rw.MasqueradeDomains,
			Exceptions: rw.MasqueradeExceptions, Classes: rw.MasqueradeClasses}, Classes: rewrite.Classes{Canonical: rw.CanonicalClasses,
			Sender: rw.SenderCanonicalClasses, Recipient: rw.RecipientCanonicalClasses},
		AlwaysBCC: rw.AlwaysBCC, SenderBCC: rw.SenderBCCMaps, RecipientBCC: rw.RecipientBCCMaps, Virtual: rw.VirtualAliasMaps, Generic: rw.GenericMaps}, cfg.RecipientDelimiter)
}
