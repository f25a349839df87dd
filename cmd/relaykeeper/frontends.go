package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/admin"
	"github.com/relaykeeper/relaykeeper/internal/auth"
	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/pop3"
	"github.com/relaykeeper/relaykeeper/internal/smtpd"
)

// frontends are the POP3 and admin servers, started after the SMTP
// listeners and stopped before them.
type frontends struct {
	pop *pop3.Server
	adm *admin.Server
	// httpAddr is where the admin HTTP listener listens, "" without one.
	httpAddr string
	stops    []func(ctx context.Context)
	wg       sync.WaitGroup // the Serve loops; shutdown waits for them
}

// serve runs one Serve loop, which ends when its server shuts down.
func (f *frontends) serve(loop func()) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		loop()
	}()
}

// loginThrottle is the one count of failed logins per client address that
// SMTP AUTH and POP3 share, so that guesses over parallel connections or
// alternating services add up. The admin password counts apart (docs/auth.md).
func (r *relay) loginThrottle() *auth.Throttle {
	if r.throttle == nil {
		r.throttle = auth.NewThrottle(r.cfg.Auth.FailureLimit, r.cfg.Auth.FailureWindow, time.Now)
	}
	return r.throttle
}

func (r *relay) startFrontends() (*frontends, error) {
	f := &frontends{}
	if r.cfg.POP.Enabled {
		if r.cfg.POP.Auth == "" {
			// As E-MailRelay's --pop needs a secrets file, ours has a
			// default place (and E-MailRelay's once had).
			r.cfg.POP.Auth = config.POPAuthDefault()
		}
		secrets, err := auth.OpenServerFile(r.cfg.POP.Auth, r.cfg.Domain, r.log)
		if err != nil {
			return nil, config.Setting("pop.auth", err)
		}
		r.popSecrets = secrets // reloaded as --server-auth's
		popTLS := r.serverTLS  // STLS with --server-tls (or required), as E-MailRelay offers it
		if !r.cfg.TLS.Server && !r.cfg.TLS.ServerRequired {
			popTLS = nil
		}
		f.pop = pop3.New(pop3.Options{SpoolDir: r.spool.Dir(), ByName: r.cfg.POP.ByName, NoDelete: r.cfg.POP.NoDelete,
			Auth: secrets, APOP: secrets, TLSConfig: popTLS, RequireTLS: r.cfg.TLS.ServerRequired,
			Domain: r.cfg.Domain, Throttle: r.loginThrottle(), RemoteClients: r.cfg.SMTP.RemoteClients, Log: r.log,
			MaxConnections: r.cfg.Policy.MaxConnections, MaxConnectionsPerIP: r.cfg.Policy.MaxConnectionsPerIP, MailLog: r.maillog})
		popAddrs := r.cfg.FrontendAddrs("pop", "", r.cfg.POP.Port)
		ls, err := smtpd.ListenAll(popAddrs)
		if err != nil {
			return nil, config.Setting("pop.port", err) // which server cannot listen
		}
		for _, l := range ls {
			r.popAddrs = append(r.popAddrs, "pop="+l.Addr().String())
			f.serve(func() { f.pop.Serve(l) })
		}
		f.stops = append(f.stops, func(ctx context.Context) { f.pop.Shutdown(ctx) })
		r.log.Info("POP3 server started", "listen", popAddrs)
	}
	if r.cfg.Admin.Port != 0 || r.cfg.Admin.HTTP != "" {
		pw := ""
		if f := r.cfg.Admin.PasswordFile; f != "" {
			var err error
			if pw, err = config.ReadAdminPasswordFile(f); err != nil {
				return nil, config.Setting("admin.password_file", err)
			}
		}
		opts := admin.Options{Relay: adminRelay{r}, Spool: r.spool, Events: r.events,
			AllowTerminate: r.cfg.Admin.Terminate, Password: pw, RemoteClients: r.cfg.SMTP.RemoteClients, Throttle: auth.NewThrottle(r.cfg.Auth.FailureLimit, r.cfg.Auth.FailureWindow, time.Now),
			Metrics: r.metrics.Handler(), Live: r.metrics, Traffic: r.metrics, Pacer: r.metrics, Threshold: r.threshold(), Log: r.log, Version: version}
		if en := r.enforcer; en != nil {
			if en.Bans != nil {
				opts.Bans, opts.Welcome = en.Bans, r.welcome
			}
			if en.SenderAccess != "" {
				opts.Blocks = adminBlocks{enforce.BlockTable{Path: en.SenderAccess}, r}
			}
		}
		f.adm = admin.New(opts)
		if r.cfg.Admin.Port != 0 {
			ls, err := smtpd.ListenAll(r.cfg.FrontendAddrs("admin", "127.0.0.1", r.cfg.Admin.Port))
			if err != nil {
				return nil, config.Setting("admin.port", err)
			}
			for _, l := range ls {
				if err := f.adm.CheckListener(l); err != nil {
					l.Close()
					return nil, err
				}
				f.serve(func() { f.adm.ServeText(l) })
			}
		}
		if r.cfg.Admin.HTTP != "" {
			ls, err := smtpd.ListenAll([]string{r.cfg.Admin.HTTP})
			if err != nil {
				return nil, config.Setting("admin.http", err)
			}
			if err := f.adm.CheckListener(ls[0]); err != nil {
				ls[0].Close()
				return nil, config.Setting("admin.http", fmt.Errorf("%s: %w", r.cfg.Admin.HTTP, err))
			}
			f.httpAddr = admin.DialAddr(ls[0].Addr())
			f.serve(func() { f.adm.ServeAPI(ls[0]) })
		}
		f.stops = append(f.stops, func(ctx context.Context) { f.adm.Shutdown(ctx) })
	}
	return f, nil
}

// shutdown stops the servers and waits for their Serve loops to return.
func (f *frontends) shutdown(ctx context.Context) {
	for _, stop := range f.stops {
		stop(ctx)
	}
	f.wg.Wait()
}

// adminBlocks reloads the policy tables after the dashboard changed the
// sender access table, as the enforcer's OnBlocked does.
type adminBlocks struct {
	enforce.BlockTable
	r *relay
}

func (b adminBlocks) Block(domain, reason string, now time.Time) (bool, error) {
	added, err := b.BlockTable.Block(domain, reason, now)
	if added {
		b.r.reloadTables(b.r.log)
	}
	return added, err
}

func (b adminBlocks) Unblock(domain string) (bool, error) {
	removed, err := b.BlockTable.Unblock(domain)
	if removed {
		b.r.reloadTables(b.r.log)
	}
	return removed, err
}

// adminRelay is what the admin interface may ask of the relay.
type adminRelay struct{ r *relay }

func (a adminRelay) Forward() error {
	if fwd, _ := a.r.cfg.Forwards(); a.r.sched == nil && fwd {
		return admin.ErrForwardOnce
	} else if a.r.sched == nil {
		return errors.New("no forwarding configured: start the relay with --poll or --forward-on-disconnect (to --forward-to, or by MX without it)")
	}
	a.r.sched.Kick(true)
	return nil
}

func (a adminRelay) Flush(ctx context.Context) error {
	if a.r.cfg.Forward.To == "" && a.r.router == nil {
		return errors.New("no remote server configured: use --forward-to")
	}
	run := a.r.sched.Flush // the running scheduler, within its own limits and pacing
	if a.r.sched == nil {
		run = a.r.newScheduler().RunOnce
	}
	sum, err := run(ctx)
	if err != nil {
		return err
	}
	return sum.Err()
}

func (a adminRelay) Status() admin.Status {
	st := admin.Status{Started: a.r.started, SMTPEnabled: !a.r.cfg.SMTP.Disabled && !a.r.smtpOff.Load(),
		DNSBLEnabled: a.r.policy.DNSBLEnabled()}
	st.Listeners = a.r.listeningOn()
	st.Sessions = relaySessions(a).Sessions()
	c := a.r.metrics.Counters()
	st.Connections, st.Accepted, st.Forwarded, st.Failed = c.Connections, c.Accepted, c.Forwarded, c.Failed
	return st
}

// SetSMTP is the admin's "smtp disable" / "smtp enable": new sessions hear
// 421 while disabled; sessions under way finish.
func (a adminRelay) SetSMTP(enabled bool) {
	a.r.smtpOff.Store(!enabled)
	for _, s := range a.r.servers {
		s.SetEnabled(enabled)
	}
}

// SetDNSBL is the admin's "dnsbl start" / "dnsbl stop".
func (a adminRelay) SetDNSBL(enabled bool) error { return a.r.policy.SetDNSBL(enabled) }

// Terminate goes through the signal loop, which owns shutdown.
func (a adminRelay) Terminate() {
	go func() {
		time.Sleep(100 * time.Millisecond) // let the reply go out
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}()
}
