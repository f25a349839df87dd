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
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/anvil"
	"github.com/relaykeeper/relaykeeper/internal/auth"
	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/pidfile"
	progressbar "github.com/relaykeeper/relaykeeper/internal/progress"
	"github.com/relaykeeper/relaykeeper/internal/queue"
	"github.com/relaykeeper/relaykeeper/internal/rdns"
	"github.com/relaykeeper/relaykeeper/internal/sdnotify"
	"github.com/relaykeeper/relaykeeper/internal/sendmail"
	"github.com/relaykeeper/relaykeeper/internal/smtpd"
	"github.com/relaykeeper/relaykeeper/internal/syslogtee"
)

// Exit statuses, as E-MailRelay's: 0 ok, 1 a failure while running (for
// --as-client: not everything was delivered), 2 a wrong command line or
// configuration, or a listening address that cannot be bound.
const (
	exitOK      = 0
	exitFailure = 1
)

// clientNameTimeout bounds a client's name lookup, which delays its
// greeting: a slow DNS server makes the client unknown, not stuck.
const clientNameTimeout = 3 * time.Second

func main() {
	if sendmail.Invoked(os.Args[0]) {
		os.Exit(runSendmail(os.Args[0], os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, cmd, err := parseArgs(config.HelpArgs(args), stdout)
	if err != nil {
		return reportArgsError(stderr, err)
	}
	if cmd != nil {
		return runCommand(cmd, stdout, stderr)
	}
	r, err := newRelay(cfg, stdout, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "relaykeeper: %v\n", cfg.Origin.Place(err))
		return exitUsage
	}
	defer r.close()
	if cfg.Check {
		if err := checkIdleFiles(&cfg); err != nil {
			fmt.Fprintf(stderr, "relaykeeper: %v\n", cfg.Origin.Place(err))
			return exitUsage
		}
		fmt.Fprintln(stdout, "relaykeeper: the configuration is good: the relay would start")
		return exitOK
	}
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
	fmt.Fprintf(stderr, "relaykeeper: unknown command %q%s (see relaykeeper --help)\n", cmd.Name, config.DidYouMean(cmd.Name, config.CommandNames()))
	return exitUsage
}

func (r *relay) run() int {
	if r.cfg.Mode == config.ModeClient {
		r.recover()
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
	if r.term != nil {
		bar = progressbar.New(r.term, "delivering", 0)
		p = bar
	}
	sum, err := r.newSchedulerWith(p).RunOnce(ctx)
	bar.Finish()
	fmt.Fprintf(r.stdout, "relaykeeper: %s (upstream %s)\n", sum, r.cfg.Upstream())
	if err != nil || sum.NotDelivered() > 0 {
		return exitFailure
	}
	return exitOK
}

// serverFor builds the SMTP server for a listener role (smtpd.Options.ForRole).
func (r *relay) serverFor(role string, o smtpd.Options) *smtpd.Server {
	o.TLSConfig, o.ClientCAs = r.serverTLS, r.clientCAs
	return smtpd.New(o.ForRole(role, r.cfg.TLS.Server, r.cfg.TLS.ServerConnection, r.cfg.TLS.ServerRequired))
}

// smtpOptions are the SMTP server's options shared by every listener
// role (serverFor adds each role's own) and by sendmail -bs.
func (r *relay) smtpOptions(ctx context.Context) smtpd.Options {
	opts := smtpd.Options{
		Context:            ctx,
		Domain:             r.cfg.Domain,
		Myorigin:           r.cfg.Rewrite.Myorigin,
		Banner:             r.cfg.SMTP.Banner,
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
	if r.cfg.SMTP.ClientNames || r.policy != nil && r.policy.NeedsClientNames() || r.welcome.NeedsNames() {
		opts.Names = &rdns.Resolver{Server: r.cfg.SMTP.DNSServer, Timeout: clientNameTimeout}
	}
	if r.cfg.Proxies() {
		opts.Proxy = &smtpd.Proxy{Addr: r.cfg.Upstream(), Dialer: r.dialer()}
		// Its verdicts and pace settings; the running one's (what the relay
		// queues itself) keeps the pause too, else one that never runs.
		sched := r.sched
		if sched == nil {
			sched = r.newScheduler()
		}
		opts.Pacer = sched.ProxyPace()
	}
	if r.sched != nil && r.cfg.ForwardsOnDisconnect() {
		opts.KickOnDisconnect = deliver.ArrivalKick{S: r.sched}
	}
	if r.secrets != nil {
		opts.Auth = auth.SMTPAuth{S: r.secrets, AllowInsecure: r.cfg.Auth.AllowInsecure}
		opts.AllowInsecureAuth, opts.AuthenticatedHeader = r.cfg.Auth.AllowInsecure, r.cfg.Auth.AuthenticatedHeader
		opts.Throttle = r.loginThrottle()
	}
	opts.Policy, opts.HeaderChecks = r.policy, r.checks
	opts.Canonical, opts.HeaderRewriteClients = r.canonical, r.cfg.Rewrite.LocalHeaderRewriteClients
	opts.Filter = r.serverFilter
	if r.sched != nil {
		opts.KickOnRescan, opts.Notices = r.sched, r.sched
	} else if fwd, _ := r.cfg.Forwards(); fwd && len(r.cfg.Filter.Server) > 0 {
		r.once = &deliver.OnceKicker{Ctx: ctx, New: r.newScheduler}
		opts.KickOnRescan = r.once
	}
	opts.DebugPeer = r.debug // nil-safe
	if r.enforcer != nil {
		if r.enforcer.Bans != nil {
			opts.Bans = r.enforcer.Bans
		}
		opts.Enforcer = enforcerProxy{r.enforcer}
	}
	if r.policy != nil {
		opts.LimitExempt = r.policy
	}
	p := &r.cfg.Policy
	opts.Memory, opts.MaxConnections, opts.MaxConnectionsPerIP = r.memory, p.MaxConnections, p.MaxConnectionsPerIP
	opts.Rates = anvil.New(anvil.Limits{Connections: p.ClientConnectionRateLimit, Messages: p.ClientMessageRateLimit,
		Recipients: p.ClientRecipientRateLimit, Unit: p.AnvilRateTimeUnit})
	opts.HardErrorLimit = r.cfg.Policy.HardErrorLimit
	return opts
}

func (r *relay) runServer() int {
	// Caught before the listeners open, a stop apart: HUPs never crowd it out.
	sigs, hups := make(chan os.Signal, 1), make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	signal.Notify(hups, syscall.SIGHUP)
	defer func() { signal.Stop(sigs); signal.Stop(hups) }()
	forwarding, triggered := r.cfg.Forwards()
	if forwarding && !triggered && r.cfg.Admin.Port == 0 && r.cfg.Admin.HTTP == "" {
		r.log.Warn("mail has somewhere to go (--forward-to, [routing]) but nothing triggers forwarding: " +
			"messages are stored only (add --poll, --forward-on-disconnect or --forward; or a --filter that exits 103)")
	}
	// A proxy's scheduler carries what the relay queues itself: encapsulations, reports, notices.
	if triggered || (r.cfg.Proxies() && (r.enforcer != nil || r.cfg.Delivery.Bounces)) {
		r.sched = r.newScheduler()
	}
	if r.enforcer != nil {
		if r.sched != nil {
			r.enforcer.Queue = r.sched
		}
		if r.reloads != nil {
			r.enforcer.Tables = r.reloads
		}
		if r.metrics != nil {
			r.enforcer.Metrics = r.metrics
		}
	}

	// The journals of a process that died are replayed before mail is
	// accepted (a second of mail at most); the rest of recovery, a look at
	// every message, runs in the background below.
	if rep, err := r.spool.Replay(); err != nil || len(rep.Restored)+rep.TornTails+len(rep.CorruptJournals) > 0 {
		r.reportRecovery(rep, err)
	}
	r.spool.OnRecovered(r.recoveredDead)
	// Group commit: concurrent acceptances share one fdatasync. The
	// journal outlives the servers and the scheduler, which write to it:
	// every return (an early one too) stops it last and waits for it.
	stopJournal := r.spool.RunJournal()
	defer stopJournal()

	// The root context: every long-lived part and every call a session makes (policy, DNSBL,
	// verifier, proxy dial, filters) derives from it; it ends when the parts have been shut down.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	opts := r.smtpOptions(ctx)
	r.servers = map[string]*smtpd.Server{}
	if !r.cfg.SMTP.Disabled {
		for _, la := range r.cfg.SMTPListens() {
			role, a := la.Role, la.Addr
			l, err := smtpd.Listen(ctx, a, opts.IdleTimeout)
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
	// The spool's pid file tells `relaykeeper queue` which process to signal.
	if err := queue.WritePID(r.spool); err != nil {
		r.log.Warn("cannot write the spool's pid file", "err", err)
	} else {
		defer queue.RemovePID(r.spool)
	}

	fe, err := r.startFrontends()
	if err != nil {
		fmt.Fprintf(r.stderr, "relaykeeper: %v\n", r.cfg.Origin.Place(err))
		for _, l := range r.lns {
			l.Close()
		}
		return exitUsage
	}
	// As E-MailRelay, a start without the pid file is none; written once bound, so that a second
	// start, which cannot bind, neither takes nor removes the running relay's file.
	if err := pidfile.Write(r.cfg.Process.PidFile); err != nil {
		fmt.Fprintf(r.stderr, "relaykeeper: %v\n", r.cfg.Origin.Place(config.Setting("process.pid_file", fmt.Errorf("%s: %w", r.cfg.Process.PidFile, err))))
		fe.shutdown(ctx)
		for _, l := range r.lns {
			l.Close()
		}
		return exitUsage
	}
	defer pidfile.Remove(r.cfg.Process.PidFile)

	var wg sync.WaitGroup // the SMTP listeners
	for _, l := range r.lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.servers[l.role].Serve(l.Listener); err != nil {
				r.log.Error("listener failed", "addr", l.Addr().String(), "err", err)
			}
		}()
	}
	var bg sync.WaitGroup // the reload ticker and the poll loop; they end with ctx
	bg.Add(1)
	go func() {
		defer bg.Done()
		// Tables reload on change too, not only on SIGHUP.
		r.reloads.Run(ctx)
	}()
	// Recovery of the files goes on while mail is accepted, until done or
	// until ctx ends.
	recoverDone := make(chan struct{})
	go func() {
		defer close(recoverDone)
		rep, err := r.spool.RecoverFiles(ctx)
		if ctx.Err() != nil {
			return
		}
		r.reportRecovery(rep, err)
		r.enforcer.Recovered() // holds what a banned client had in flight at a crash
		if r.sched != nil {
			// What recovery released is listed now, not on a later kick.
			r.sched.KickRecovered(r.cfg.Forward.AtStartup)
		}
	}()
	var bansDone chan struct{}
	if r.enforcer != nil {
		// Ban lines are written when each ban takes effect; at the end
		// those still waiting are written at once.
		bansDone = make(chan struct{})
		go func() {
			defer close(bansDone)
			r.enforcer.BanLines.Run(ctx)
		}()
	}
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
			bg.Add(1)
			go func() {
				defer bg.Done()
				r.sched.Poll(ctx, r.cfg.Forward.Poll)
			}()
		}
	}
	addrs := r.listeningOn()
	mode := r.cfg.Describe(r.cfg.Upstream(), r.sched != nil)
	started := []any{"version", version, "pid", os.Getpid(), "listen", addrs, "spool", r.spool.Dir(), "mode", mode}
	if fe != nil && fe.httpAddr != "" {
		// Off a terminal (systemd, a container) only this line says where the dashboard is.
		started = append(started, "dashboard", "http://"+fe.httpAddr+"/")
	}
	r.log.Info("relaykeeper started", started...)
	sdnotify.Ready(r.log, fmt.Sprint("listening on ", addrs)) // the unit's Type=notify
	if isTerminal(r.stderr) {
		r.cfg.WriteWhereToLook(r.stderr, config.Running{Version: version, Mode: mode, Addrs: addrs,
			Dashboard: fe.httpAddr, Spool: r.spool.Dir()})
	}
	if r.cfg.Log.CloseStderr {
		syslogtee.CloseStderr() // E-MailRelay's --close-stderr, once started and said where to look
	}

	for sig := os.Signal(nil); sig == nil; {
		select {
		case sig = <-sigs:
			r.log.Info("stopping", "signal", sig.String())
			sdnotify.Stopping(r.log)
		case <-hups:
			sdnotify.Reloading(r.log)
			r.reopenLogs()
			r.log.Info("SIGHUP: reloading tables, rescanning the spool, reopening log files")
			r.reloads.AllWait(ctx) // before the rescan below
			if r.certs != nil {
				r.certs.Refresh()
			}
			if r.sched != nil {
				r.sched.Kick(true)
			}
			sdnotify.Ready(r.log, fmt.Sprint("listening on ", addrs))
		}
	}

	// Reverse order: all servers stop accepting at once (one's sessions must not keep another's
	// listener open); sessions end or are cut; the poll loop ends; the scheduler releases its claims.
	sctx, scancel := context.WithTimeout(context.Background(), r.cfg.SMTP.ShutdownGrace)
	defer scancel()
	go func() { // a second signal cuts the graces short
		r.log.Warn("stopping now: sessions and deliveries under way are cut", "signal", (<-sigs).String())
		scancel()
		r.sched.Hurry()
	}()
	var swg sync.WaitGroup
	swg.Go(func() { fe.shutdown(sctx) })
	for _, srv := range r.servers {
		swg.Go(func() {
			if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, net.ErrClosed) {
				r.log.Warn("smtp shutdown", "err", err)
			}
		})
	}
	swg.Wait()
	wg.Wait()
	cancel()
	bg.Wait()
	<-recoverDone
	if schedDone != nil {
		<-schedDone
	}
	if r.once != nil {
		r.once.Wait()
	}
	if bansDone != nil {
		<-bansDone
		r.enforcer.BanLines.Flush() // bans found by the last deliveries
	}
	stopJournal()
	r.log.Info("stopped")
	return exitOK
}

// listeningOn are the SMTP-side listeners' addresses, "role=addr" for
// those that are not plain SMTP (submission=..., smtps=...), as the start-up
// line and the admin status show them.
func (r *relay) listeningOn() []string {
	var addrs []string
	for _, l := range r.lns {
		a := l.Addr().String()
		if l.role != config.RoleSMTP {
			a = l.role + "=" + a
		}
		addrs = append(addrs, a)
	}
	return append(addrs, r.popAddrs...)
}
