package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/admin"
	"github.com/relaykeeper/relaykeeper/internal/auth"
	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/pop3"
)

// frontends are the POP3 and admin servers, started after the SMTP
// listeners and stopped before them.
type frontends struct {
	pop   *pop3.Server
	adm   *admin.Server
	stops []func(ctx context.Context)
	wg    sync.WaitGroup // the Serve loops; shutdown waits for them
}

// serve runs one Serve loop, which ends when its server shuts down.
func (f *frontends) serve(loop func()) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		loop()
	}()
}

// listenAll opens one listener per address, or closes what it opened and
// reports the first failure.
func listenAll(addrs []string) ([]net.Listener, error) {
	var ls []net.Listener
	for _, a := range addrs {
		l, err := net.Listen("tcp", a)
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return nil, fmt.Errorf("cannot listen on %s: %w", a, err)
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// addrsFor turns --interface entries (or, without any, the default hosts)
// and a port into listen addresses.
func addrsFor(entries []string, defaults []string, port int) []string {
	if len(entries) == 0 {
		entries = defaults
	}
	var out []string
	for _, e := range entries {
		if _, _, err := net.SplitHostPort(e); err == nil {
			out = append(out, e)
			continue
		}
		out = append(out, net.JoinHostPort(strings.Trim(e, "[]"), strconv.Itoa(port)))
	}
	return out
}

func (r *relay) startFrontends() (*frontends, error) {
	f := &frontends{}
	if r.cfg.POP.Enabled {
		if r.cfg.POP.Auth == "" {
			// As E-MailRelay's --pop needs a secrets file, ours has a
			// default place.
			r.cfg.POP.Auth = "/etc/relaykeeper.auth"
		}
		secrets, err := auth.LoadSecrets(r.cfg.POP.Auth)
		if err != nil {
			return nil, fmt.Errorf("--pop-auth: %w", err)
		}
		f.pop = pop3.New(pop3.Options{SpoolDir: r.spool.Dir(), ByName: r.cfg.POP.ByName, NoDelete: r.cfg.POP.NoDelete,
			Auth: secrets, APOPSecret: secrets.APOPSecret, TLSConfig: r.serverTLS, RequireTLS: r.cfg.TLS.ServerRequired,
			Domain: r.cfg.Domain, Log: r.log})
		ls, err := listenAll(addrsFor(r.cfg.OtherInterfaces["pop"], []string{""}, r.cfg.POP.Port))
		if err != nil {
			return nil, err
		}
		for _, l := range ls {
			f.serve(func() { f.pop.Serve(l) })
		}
		f.stops = append(f.stops, func(ctx context.Context) { f.pop.Shutdown(ctx) })
		r.log.Info("POP3 server started", "listen", addrsFor(r.cfg.OtherInterfaces["pop"], []string{""}, r.cfg.POP.Port))
	}
	if r.cfg.Admin.Port != 0 || r.cfg.Admin.HTTP != "" {
		pw := ""
		if r.cfg.Admin.PasswordFile != "" {
			b, err := os.ReadFile(r.cfg.Admin.PasswordFile)
			if err != nil {
				return nil, fmt.Errorf("admin.password_file: %w", err)
			}
			pw = strings.TrimSpace(string(b))
		}
		f.adm = admin.New(admin.Options{Relay: adminRelay{r}, Spool: r.spool, Events: r.events,
			AllowTerminate: r.cfg.Admin.Terminate, Password: pw, Log: r.log})
		if r.cfg.Admin.Port != 0 {
			ls, err := listenAll(addrsFor(r.cfg.OtherInterfaces["admin"], []string{"127.0.0.1"}, r.cfg.Admin.Port))
			if err != nil {
				return nil, err
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
			ls, err := listenAll([]string{r.cfg.Admin.HTTP})
			if err != nil {
				return nil, err
			}
			if err := f.adm.CheckListener(ls[0]); err != nil {
				ls[0].Close()
				return nil, err
			}
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

// adminRelay is what the admin interface may ask of the relay.
type adminRelay struct{ r *relay }

func (a adminRelay) Forward() error {
	if a.r.sched == nil {
		return errors.New("no forwarding configured: use --forward-to with --poll or --forward-on-disconnect")
	}
	a.r.sched.Kick(true)
	return nil
}

func (a adminRelay) Flush(ctx context.Context) error {
	if a.r.cfg.Forward.To == "" && a.r.router == nil {
		return errors.New("no remote server configured: use --forward-to")
	}
	var sum deliver.Summary
	var err error
	if a.r.sched != nil {
		// The running scheduler does it, within its own limits and
		// pacing.
		sum, err = a.r.sched.Flush(ctx)
	} else {
		sum, err = a.r.newScheduler().RunOnce(ctx)
	}
	if err != nil {
		return err
	}
	if n := sum.Deferred + sum.Failed + sum.Untried; n > 0 {
		return fmt.Errorf("%d of %d message(s) not delivered", n, sum.Messages+sum.Untried)
	}
	return nil
}

func (a adminRelay) Status() admin.Status {
	st := admin.Status{Started: a.r.started, SMTPEnabled: !a.r.cfg.SMTP.Disabled && !a.r.smtpOff.Load(),
		DNSBLEnabled: a.r.cfg.Policy.DNSBL != "" && !a.r.dnsblOff.Load()}
	for _, l := range a.r.lns {
		st.Listeners = append(st.Listeners, l.Addr().String())
	}
	for _, s := range a.r.servers {
		st.Sessions += int(s.Active())
	}
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
func (a adminRelay) SetDNSBL(enabled bool) {
	a.r.dnsblOff.Store(!enabled)
	if a.r.policy != nil {
		a.r.policy.SetDNSBL(enabled)
	}
}

// Terminate goes through the signal loop, which owns shutdown.
func (a adminRelay) Terminate() {
	go func() {
		time.Sleep(100 * time.Millisecond) // let the reply go out
		syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}()
}
