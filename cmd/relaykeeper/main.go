// Command relaykeeper is a store-and-forward mail relay and proxy whose
// command line keeps E-MailRelay's switches. See --help and README.md.
//
// main owns the process's lifetime: it builds every component from the
// configuration, passes dependencies in, starts the long-lived parts, and on
// SIGTERM stops them in reverse order (listeners first, so no new message
// arrives; then the scheduler, which releases its claims).
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/relaykeeper/relaykeeper/internal/admin"
	"github.com/relaykeeper/relaykeeper/internal/auth"
	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/headercheck"
	"github.com/relaykeeper/relaykeeper/internal/logfile"
	"github.com/relaykeeper/relaykeeper/internal/maillog"
	"github.com/relaykeeper/relaykeeper/internal/policy"
	progressbar "github.com/relaykeeper/relaykeeper/internal/progress"
	"github.com/relaykeeper/relaykeeper/internal/remote"
	"github.com/relaykeeper/relaykeeper/internal/sendmail"
	"github.com/relaykeeper/relaykeeper/internal/smtpd"
	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/internal/srs"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

// Exit statuses, as E-MailRelay's: 0 ok, 1 a failure while running (for
// --as-client: not everything was delivered), 2 a wrong command line or
// configuration, or a listening address that cannot be bound.
const (
	exitOK      = 0
	exitFailure = 1
)

func main() {
	if sendmail.Invoked(os.Args[0]) {
		os.Exit(runSendmail(os.Args[0], os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, cmd, err := parseArgs(args, stdout)
	if err != nil {
		return reportArgsError(stderr, err)
	}
	if cmd != nil {
		return runCommand(cmd, stdout, stderr)
	}
	r, err := newRelay(cfg, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "relaykeeper: %v\n", err)
		return exitUsage
	}
	defer r.close()
	return r.run()
}

// runCommand runs a subcommand.
func runCommand(cmd *Command, stdout, stderr io.Writer) int {
	switch cmd.Name {
	case "submit":
		return runSubmit(cmd.Args, os.Stdin, stdout, stderr)
	case "passwd":
		return runPasswd(cmd.Args, os.Stdin, stdout, stderr)
	case "enforce":
		return runEnforce(cmd.Args, os.Stdin, stdout, stderr)
	case "bans":
		return runBans(cmd.Args, os.Stdin, stdout, stderr)
	case "queue":
		return runQueue(cmd.Args, os.Stdin, stdout, stderr)
	case "stats":
		return runStats(cmd.Args, os.Stdin, stdout, stderr)
	case "postfix-enforcer":
		return runPostfixEnforcer(cmd.Args, os.Stdin, stdout, stderr)
	case "completion":
		return runCompletion(cmd.Args, stdout, stderr)
	}
	fmt.Fprintf(stderr, "relaykeeper: unknown command %q (see relaykeeper --help)\n", cmd.Name)
	return exitUsage
}

// relay is one running relaykeeper: the parts main built and must stop.
type relay struct {
	cfg config.Config
	// stdout and stderr are the process's, injected so that tests can
	// read what the operator would see.
	stdout, stderr io.Writer
	log            *slog.Logger
	maillog        *maillog.Logger
	// files are --log-file and the mail log, reopened on SIGHUP.
	files   []*logfile.File
	spool   *spool.Spool
	sched   *deliver.Scheduler
	servers map[string]*smtpd.Server // by listener role
	lns     []roleListener
	// serverTLS is nil without a certificate.
	serverTLS *tls.Config
	remote    remote.Options
	// secrets are the server accounts (--server-auth), nil without.
	secrets  *auth.Secrets
	policy   *policy.Engine
	tables   *table.Set
	checks   *headercheck.Checks
	enforcer *enforce.Enforcer
	// router is nil without Postfix-style routing: then everything goes
	// to forward.to.
	router deliver.Router
	// serverFilter and clientFilter are --filter and --client-filter.
	serverFilter, clientFilter filter.Filter
	// events copies the mail log to the admin interface's notify sessions.
	events   *admin.Events
	started  time.Time
	smtpOff  atomic.Bool // the admin said "smtp disable"
	dnsblOff atomic.Bool // the admin said "dnsbl stop"
	// srs is nil without --srs-secret.
	srs *srs.Rewriter
}

type roleListener struct {
	net.Listener
	role string
}

func newRelay(cfg config.Config, stdout, stderr io.Writer) (*relay, error) {
	r := &relay{cfg: cfg, stdout: stdout, stderr: stderr}
	if r.cfg.Domain == "" {
		h, err := os.Hostname()
		if err != nil || h == "" {
			h = "localhost"
		}
		r.cfg.Domain = h
	}

	logOut := stderr
	if cfg.Log.File != "" {
		f, err := logfile.Open(cfg.Log.File)
		if err != nil {
			return nil, fmt.Errorf("--log-file: %w", err)
		}
		r.files = append(r.files, f)
		logOut = f
	}
	level := slog.LevelWarn
	if cfg.Log.Enabled || cfg.Mode == config.ModeClient {
		level = slog.LevelInfo
	}
	if cfg.Log.Verbose {
		level = slog.LevelDebug
	}
	hopts := &slog.HandlerOptions{Level: level}
	if cfg.Log.Format == "json" {
		r.log = slog.New(slog.NewJSONHandler(logOut, hopts))
	} else {
		r.log = slog.New(slog.NewTextHandler(logOut, hopts))
	}
	mailOut := logOut
	if cfg.Log.MailLog != "" {
		f, err := logfile.Open(cfg.Log.MailLog)
		if err != nil {
			return nil, fmt.Errorf("mail log: %w", err)
		}
		r.files = append(r.files, f)
		mailOut = f
	}
	r.events = &admin.Events{}
	r.started = time.Now()
	r.maillog = maillog.New(io.MultiWriter(mailOut, r.events))

	sp, err := spool.Open(cfg.Spool.Dir, r.log)
	if err != nil {
		return nil, fmt.Errorf("spool directory %s: %w", cfg.Spool.Dir, err)
	}
	r.spool = sp

	if r.serverTLS, _, err = serverTLS(&cfg.TLS); err != nil {
		return nil, err
	}
	mode, tc, err := clientTLS(&cfg.TLS, r.upstream())
	if err != nil {
		return nil, err
	}
	r.remote = remote.Options{
		Helo:            r.cfg.Domain,
		ConnectTimeout:  cfg.Forward.ConnectionTimeout,
		ResponseTimeout: cfg.Forward.ResponseTimeout,
		TLS:             mode,
		TLSConfig:       tc,
	}
	if f := cfg.Auth.ClientSecrets; f != "" {
		cs, err := auth.LoadSecrets(f)
		if err != nil {
			return nil, fmt.Errorf("--client-auth: %w", err)
		}
		cs.SetLog(r.log) // OAuth2 refresh failures are alerts
		factory, ok := cs.ClientAuth("")
		if !ok {
			return nil, fmt.Errorf("--client-auth %s: no \"client\" line", f)
		}
		r.remote.Auth = factory // nil for "client plain:b = =": no AUTH
	}
	if f := cfg.Auth.ServerSecrets; f != "" {
		if r.secrets, err = auth.LoadSecrets(f); err != nil {
			return nil, fmt.Errorf("--server-auth: %w", err)
		}
		if !r.secrets.HasServer() {
			return nil, fmt.Errorf("--server-auth %s: no \"server\" lines", f)
		}
		r.secrets.Domain = r.cfg.Domain
	}
	if r.serverFilter, err = buildFilters(cfg.Filter.Server, filter.Server, cfg.Filter.Timeout); err != nil {
		return nil, fmt.Errorf("--filter: %w", err)
	}
	if r.clientFilter, err = buildFilters(cfg.Filter.Client, filter.Client, cfg.Filter.Timeout); err != nil {
		return nil, fmt.Errorf("--client-filter: %w", err)
	}
	if err := r.addMiltersAndDKIM(); err != nil {
		return nil, err
	}
	if f := cfg.SRS.SecretFile; f != "" {
		secrets, err := srs.LoadSecrets(f)
		if err != nil {
			return nil, fmt.Errorf("--srs-secret: %w", err)
		}
		domain := cfg.SRS.Domain
		if domain == "" {
			domain = r.cfg.Domain
		}
		if r.srs, err = srs.New(domain, secrets); err != nil {
			return nil, fmt.Errorf("--srs-secret: %w", err)
		}
	}
	if routingConfigured(&r.cfg) || r.cfg.DeliversByMX() {
		rt, err := r.newRouter()
		if err != nil {
			return nil, fmt.Errorf("routing: %w", err)
		}
		r.router = rt
	}
	if err := enforcePaths(&r.cfg); err != nil {
		return nil, err
	}
	if r.enforcer, err = r.newEnforcer(); err != nil {
		return nil, err
	}
	if cfg.Mode != config.ModeClient {
		if r.policy, r.tables, err = buildPolicy(&r.cfg, r.secrets, r.log); err != nil {
			return nil, err
		}
		if cfg.Policy.HeaderChecks != "" || cfg.Policy.BodyChecks != "" {
			if r.checks, err = headercheck.Open(cfg.Policy.HeaderChecks, cfg.Policy.BodyChecks); err != nil {
				return nil, fmt.Errorf("header/body checks: %w", err)
			}
		}
	}
	return r, nil
}

// reloadTables re-reads every access table whose file changed. A table
// with a bad line keeps its old contents; the error names file and line.
func (r *relay) reloadTables() {
	if en := r.enforcer; en != nil {
		if _, err := en.Bans.Reload(); err != nil {
			r.log.Error("ban list not reloaded", "err", err)
		}
		if _, err := en.Welcome.Reload(); err != nil {
			r.log.Error("welcomelist not reloaded; the old one stays in force", "err", err)
		}
	}
	if r.checks != nil {
		if err := r.checks.Reload(); err != nil {
			r.log.Error("header/body checks not reloaded; the old ones stay in force", "err", err)
		}
	}
	if r.tables == nil {
		return
	}
	for _, err := range r.tables.ReloadAll() {
		r.log.Error("table not reloaded; the old one stays in force", "err", err)
	}
}

// authenticator adapts the secrets file to what the SMTP server asks.
type authenticator struct {
	s             *auth.Secrets
	allowInsecure bool
}

func (a authenticator) Mechanisms(tlsActive bool) []string {
	return a.s.Mechanisms(tlsActive, a.allowInsecure)
}

func (a authenticator) Server(mech string, ok func(string)) (sasl.Server, error) {
	return a.s.Server(mech, ok)
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

// dialer makes upstream sessions as the configuration says.
func (r *relay) dialer() deliver.Dialer {
	opts := r.remote
	dp := newDebugPeers(r.cfg.Log.DebugPeers)
	return func(ctx context.Context, addr string) (*remote.Conn, error) {
		opts := opts
		if dp != nil && dp.upstream(addr) {
			l := r.log.With("debug_peer", addr)
			opts.Trace = func(dir, line string) { l.Info("smtp", "dir", dir, "line", line) }
		}
		return remote.Dial(ctx, addr, opts)
	}
}

func (r *relay) upstream() string {
	addr, err := config.ResolveHostPort(r.cfg.Forward.To)
	if err != nil {
		return r.cfg.Forward.To // Validate has already refused what cannot resolve
	}
	return addr
}

// buildFilters parses a filter chain; nil for none.
func buildFilters(specs []string, side filter.Side, timeout time.Duration) (filter.Filter, error) {
	var fs []filter.Filter
	for _, sp := range specs {
		f, err := filter.Parse(sp, side, timeout)
		if err != nil {
			return nil, err
		}
		fs = append(fs, f)
	}
	switch len(fs) {
	case 0:
		return nil, nil
	case 1:
		return fs[0], nil
	}
	return filter.Chain(fs...), nil
}

// onResult is the scheduler's refusal hook: the enforcer's, if any.
func (r *relay) onResult() func(deliver.Result) deliver.Effect {
	if r.enforcer == nil {
		return nil
	}
	return r.onDeliveryRefusal
}

func (r *relay) recover() {
	rep, err := r.spool.Recover()
	if err != nil {
		r.log.Error("spool recovery failed", "err", err)
		return
	}
	for _, id := range rep.Quarantined {
		r.maillog.Quarantine(id, rep.Reasons[id])
	}
	r.log.Info("spool recovered", "dir", r.spool.Dir(), "report", rep.String())
}

func (r *relay) newScheduler() *deliver.Scheduler { return r.newSchedulerWith(nil) }

// newSchedulerWith is newScheduler telling p, if not nil, how RunOnce
// progresses.
func (r *relay) newSchedulerWith(p deliver.Progress) *deliver.Scheduler {
	opts := deliver.Options{
		Progress:              p,
		Spool:                 r.spool,
		Upstream:              r.upstream(),
		Dial:                  r.dialer(),
		Connections:           r.cfg.Delivery.Connections,
		MessagesPerConnection: r.cfg.Delivery.MessagesPerConnection,
		MinBackoff:            r.cfg.Delivery.MinBackoff,
		MaxBackoff:            r.cfg.Delivery.MaxBackoff,
		Grace:                 r.cfg.SMTP.ShutdownGrace,
		Log:                   r.log,
		MailLog:               r.maillog,
		MaxLifetime:           r.cfg.Delivery.MaxQueueLifetime,
		BounceLifetime:        r.cfg.Delivery.BounceQueueLifetime,
		DelayWarning:          r.cfg.Delivery.DelayWarning,
		Notify:                r.notify,
		OnResult:              r.onResult(),
		Router:                r.router,
		ClientFilter:          r.clientFilter,
		ContentFilter:         r.cfg.Routing.ContentFilter,
	}
	if r.srs != nil {
		opts.Senders = r.srs
	}
	return deliver.New(opts)
}

func (r *relay) run() int {
	r.recover()
	if r.cfg.Mode == config.ModeClient {
		return r.runClient()
	}
	return r.runServer()
}

// runClient is --as-client: forward everything spooled once, say how it
// went on one line, and exit 0 only if all was delivered.
func (r *relay) runClient() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	// A progress bar on a terminal; nothing when logged to a file.
	var bar *progressbar.Bar
	var p deliver.Progress
	if isTerminal(r.stderr) {
		bar = progressbar.New(r.stderr, "delivering", 0)
		p = bar
	}
	sum, err := r.newSchedulerWith(p).RunOnce(ctx)
	bar.Finish()
	fmt.Fprintf(r.stdout, "relaykeeper: %d message(s): %d delivered, %d deferred, %d failed, %d not tried (upstream %s)\n",
		sum.Messages+sum.Untried, sum.Sent, sum.Deferred, sum.Failed, sum.Untried, r.upstream())
	if err != nil || sum.Deferred+sum.Failed+sum.Untried > 0 {
		return exitFailure
	}
	return exitOK
}

// listenAddrs turns --interface and --port into listen addresses, each with
// its role.
func (r *relay) listenAddrs() [][2]string {
	port := strconv.Itoa(r.cfg.SMTP.Port)
	if len(r.cfg.SMTP.Interfaces) == 0 {
		return [][2]string{{config.RoleSMTP, ":" + port}}
	}
	var out [][2]string
	for _, entry := range r.cfg.SMTP.Interfaces {
		role, a := config.SplitRole(entry)
		if _, _, err := net.SplitHostPort(a); err != nil {
			a = net.JoinHostPort(strings.Trim(a, "[]"), port)
		}
		out = append(out, [2]string{role, a})
	}
	return out
}

// serverFor builds the SMTP server for one listener role: plain SMTP offers
// STARTTLS when there is a certificate; submission requires TLS and, with
// accounts, AUTH; smtps speaks TLS from the first byte.
func (r *relay) serverFor(role string, base smtpd.Options) *smtpd.Server {
	o := base
	o.TLSConfig = r.serverTLS
	switch role {
	case config.RoleSMTP:
		o.ImplicitTLS = r.cfg.TLS.ServerConnection
		o.RequireTLS = r.cfg.TLS.ServerRequired
	case config.RoleSubmission:
		o.RequireTLS = r.serverTLS != nil
		o.RequireAuth = o.Auth != nil
	case config.RoleSMTPS:
		o.ImplicitTLS = true
		o.RequireAuth = o.Auth != nil
	case config.RoleReinject:
		// The content filter's return path: it has been through policy
		// and filters already.
		o.Reinject = true
		o.Policy, o.HeaderChecks, o.Filter, o.Auth, o.Enforcer = nil, nil, nil, nil, nil
		o.TLSConfig = nil
	}
	return smtpd.New(o)
}

func (r *relay) runServer() int {
	forwarding := r.cfg.Mode == config.ModeServer && !r.cfg.Forward.Immediate &&
		(r.cfg.Forward.To != "" || r.router != nil || r.cfg.Routing.ContentFilter != "")
	triggered := forwarding && (r.cfg.Forward.Poll > 0 || r.cfg.Forward.OnDisconnect || r.cfg.Forward.AtStartup)
	if forwarding && !triggered {
		r.log.Warn("--forward-to is set but nothing triggers forwarding: messages are stored only " +
			"(add --poll, --forward-on-disconnect or --forward)")
	}
	// In proxy mode a scheduler carries what the relay itself queues:
	// encapsulated copies and reports.
	proxying := r.cfg.Mode == config.ModeProxy || r.cfg.Forward.Immediate
	if triggered || (proxying && r.enforcer != nil) {
		r.sched = r.newScheduler()
	}

	opts := smtpd.Options{
		Domain:             r.cfg.Domain,
		MaxMessageSize:     r.cfg.SMTP.MaxMessageSize,
		MaxRecipients:      r.cfg.SMTP.MaxRecipients,
		IdleTimeout:        r.cfg.SMTP.IdleTimeout,
		TransactionTimeout: r.cfg.SMTP.TransactionTimeout,
		RemoteClients:      r.cfg.SMTP.RemoteClients,
		Spool:              r.spool,
		Log:                r.log,
		MailLog:            r.maillog,
	}
	if r.srs != nil {
		opts.SRS = r.srs
	}
	if r.cfg.Mode == config.ModeProxy || r.cfg.Forward.Immediate {
		opts.Proxy = &smtpd.Proxy{Addr: r.upstream(), Dial: r.dialer()}
	}
	if r.sched != nil && (r.cfg.Forward.OnDisconnect || (r.cfg.Forward.PollSet && r.cfg.Forward.Poll == 0)) {
		opts.OnDisconnect = func() { r.sched.Kick(false) }
	}
	if r.secrets != nil {
		opts.Auth = authenticator{r.secrets, r.cfg.Auth.AllowInsecure}
		opts.AllowInsecureAuth = r.cfg.Auth.AllowInsecure
		opts.Throttle = auth.NewThrottle(r.cfg.Auth.FailureLimit, r.cfg.Auth.FailureWindow, time.Now)
	}
	opts.Policy = r.policy
	opts.HeaderChecks = r.checks
	opts.Filter = r.serverFilter
	opts.OnRescan = func() {
		if r.sched != nil {
			r.sched.Kick(false)
		}
	}
	if dp := newDebugPeers(r.cfg.Log.DebugPeers); dp != nil {
		opts.DebugPeer = dp.client
	}
	if r.enforcer != nil {
		opts.Banned = r.banned
		opts.Enforcer = enforcerProxy{r}
	}
	if r.policy != nil {
		opts.LimitExempt = r.policy.Trusted
	}
	opts.MaxConnections = r.cfg.Policy.MaxConnections
	opts.MaxConnectionsPerIP = r.cfg.Policy.MaxConnectionsPerIP
	opts.HardErrorLimit = r.cfg.Policy.HardErrorLimit
	r.servers = map[string]*smtpd.Server{}
	if !r.cfg.SMTP.Disabled {
		for _, ra := range r.listenAddrs() {
			role, a := ra[0], ra[1]
			l, err := net.Listen("tcp", a)
			if err != nil {
				fmt.Fprintf(r.stderr, "relaykeeper: cannot listen on %s: %v\n", a, err)
				for _, l := range r.lns {
					l.Close()
				}
				return exitUsage
			}
			r.lns = append(r.lns, roleListener{l, role})
			if r.servers[role] == nil {
				r.servers[role] = r.serverFor(role, opts)
			}
		}
	}
	// The spool's own pid file tells `relaykeeper queue` which process
	// to signal after changing the spool.
	spoolPid := filepath.Join(r.spool.Dir(), ".relaykeeper.pid")
	if err := os.WriteFile(spoolPid, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		r.log.Warn("cannot write the spool's pid file", "file", spoolPid, "err", err)
	} else {
		defer os.Remove(spoolPid)
	}
	if r.cfg.Process.PidFile != "" {
		if err := os.WriteFile(r.cfg.Process.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			r.log.Error("cannot write pid file", "file", r.cfg.Process.PidFile, "err", err)
		} else {
			defer os.Remove(r.cfg.Process.PidFile)
		}
	}

	fe, err := r.startFrontends()
	if err != nil {
		fmt.Fprintf(r.stderr, "relaykeeper: %v\n", err)
		for _, l := range r.lns {
			l.Close()
		}
		return exitUsage
	}

	// Group commit: concurrent acceptances share one fdatasync. The
	// journal outlives the servers and the scheduler, which write to it.
	jctx, jcancel := context.WithCancel(context.Background())
	defer jcancel()
	var journalDone chan struct{}
	if j, err := r.spool.OpenJournal(); err != nil {
		r.log.Warn("no spool journal: every message syncs its own files", "err", err)
	} else {
		journalDone = make(chan struct{})
		go func() {
			defer close(journalDone)
			if err := j.Run(jctx); err != nil {
				r.log.Error("spool journal", "err", err)
			}
		}()
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for _, l := range r.lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.servers[l.role].Serve(l.Listener); err != nil {
				r.log.Error("listener failed", "addr", l.Addr().String(), "err", err)
			}
		}()
	}
	go func() {
		// Tables reload on change too, not only on SIGHUP.
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				r.reloadTables()
			case <-ctx.Done():
				return
			}
		}
	}()
	var schedDone chan struct{}
	if r.sched != nil {
		schedDone = make(chan struct{})
		go func() {
			defer close(schedDone)
			r.sched.Run(ctx)
		}()
		if r.cfg.Forward.AtStartup {
			r.sched.Kick(false)
		}
		if r.cfg.Forward.Poll > 0 {
			go r.poll(ctx)
		}
	}
	var addrs []string
	for _, l := range r.lns {
		a := l.Addr().String()
		if l.role != config.RoleSMTP {
			a = l.role + "=" + a
		}
		addrs = append(addrs, a)
	}
	mode := "store"
	switch {
	case opts.Proxy != nil:
		mode = "proxy to " + opts.Proxy.Addr
	case r.sched != nil && r.cfg.DeliversByMX():
		mode = "store and forward to each recipient's domain by MX"
	case r.sched != nil && r.router != nil:
		mode = "store and forward by routing"
	case r.sched != nil:
		mode = "store and forward to " + r.upstream()
	}
	r.log.Info("relaykeeper started", "version", version, "pid", os.Getpid(), "listen", addrs,
		"spool", r.spool.Dir(), "mode", mode)
	if isTerminal(r.stderr) {
		r.printWhereToLook(addrs, mode, fe)
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	defer signal.Stop(sigs)
	for sig := range sigs {
		if sig == syscall.SIGHUP {
			r.reopenLogs()
			r.log.Info("SIGHUP: reloading tables, rescanning the spool, reopening log files")
			r.reloadTables()
			if r.sched != nil {
				r.sched.Kick(true)
			}
			continue
		}
		r.log.Info("stopping", "signal", sig.String())
		break
	}

	// Reverse order: no new sessions, sessions finish or are cut, then the
	// scheduler lets deliveries under way end and releases its claims.
	sctx, scancel := context.WithTimeout(context.Background(), r.cfg.SMTP.ShutdownGrace)
	defer scancel()
	fe.shutdown(sctx)
	var swg sync.WaitGroup
	for _, srv := range r.servers {
		swg.Add(1)
		go func() {
			defer swg.Done()
			if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, net.ErrClosed) {
				r.log.Warn("smtp shutdown", "err", err)
			}
		}()
	}
	swg.Wait()
	wg.Wait()
	cancel()
	if schedDone != nil {
		<-schedDone
	}
	jcancel()
	if journalDone != nil {
		<-journalDone
	}
	r.log.Info("stopped")
	return exitOK
}

// poll kicks the scheduler every --poll seconds until ctx ends.
func (r *relay) poll(ctx context.Context) {
	t := time.NewTicker(r.cfg.Forward.Poll)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			r.sched.Kick(false)
		case <-ctx.Done():
			return
		}
	}
}
