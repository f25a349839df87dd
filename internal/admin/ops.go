package admin

import (
	"context"
	"errors"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/queue"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// The operations both front ends share.

// flush runs the relay's flush unless one is under way already.
func (s *Server) flush(ctx context.Context) error {
	if !s.flushing.CompareAndSwap(false, true) {
		return errStillWorking
	}
	defer s.flushing.Store(false)
	n, err := s.count(spool.Ready)
	if err != nil {
		return err
	}
	if n == 0 {
		return errNothingToSend
	}
	err = s.relay.Flush(ctx)
	s.waitRemovals(ctx)
	return err
}

// removalGrace bounds how long flush waits for the spool's background
// removals before it answers.
const removalGrace = 10 * time.Second

// waitRemovals waits until the spool has removed the files of the messages
// just delivered: until then they stay listed as being forwarded, and a
// script that flushes and then lists (as E-MailRelay's users do) would see
// mail that is gone. The wait ends early with ctx, or after removalGrace
// on a spool that never stops removing; its goroutine ends when the
// spool's removers go idle.
func (s *Server) waitRemovals(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		s.opts.Spool.WaitRemovals()
		close(done)
	}()
	t := time.NewTimer(removalGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-ctx.Done():
	case <-t.C:
	}
}

// forward is the "forward" command: the relay forwards what is due, or,
// without forwarding of its own (ErrForwardOnce), a flush runs in the
// background, unless one is under way already.
func (s *Server) forward() error {
	err := s.relay.Forward()
	if !errors.Is(err, ErrForwardOnce) {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return ErrServerClosed
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.flush(s.ctx)
		if err != nil && !errors.Is(err, errStillWorking) && !errors.Is(err, errNothingToSend) {
			s.log.Warn("admin: forward", "err", err)
		}
	}()
	return nil
}

var (
	errStillWorking  = errors.New("still working")
	errNothingToSend = errors.New("no messages to send")
)

// count returns how many messages are in the given state.
func (s *Server) count(st spool.State) (int, error) {
	ents, err := s.opts.Spool.List()
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range ents {
		if e.State == st {
			n++
		}
	}
	return n, nil
}

// ids lists the ids of the messages in the given states, one per line, or
// "<none>" as E-MailRelay does.
func (s *Server) ids(states ...spool.State) string {
	ents, err := s.opts.Spool.List()
	if err != nil {
		return "error: " + oneLine(err.Error())
	}
	var out []string
	for _, e := range ents {
		for _, st := range states {
			if e.State == st {
				out = append(out, e.ID)
			}
		}
	}
	if len(out) == 0 {
		return "<none>"
	}
	return strings.Join(out, "\n")
}

// unfailAll makes every failed message ready and due now, as `relaykeeper
// queue retry` does, and tells the relay when any was.
func (s *Server) unfailAll() ([]queue.Result, error) {
	msgs, err := queue.List(s.opts.Spool, queue.Filter{States: []spool.State{spool.Failed}})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(msgs))
	for i, m := range msgs {
		ids[i] = m.ID
	}
	res := queue.Apply(s.opts.Spool, queue.Retry, ids)
	s.changed(res)
	return res, nil
}

// changed tells the relay to re-read the spool when something changed.
// No relay that can forward is not an error here: the messages go when it
// can.
func (s *Server) changed(res []queue.Result) {
	for _, r := range res {
		if r.Outcome == queue.Done {
			if err := s.relay.Forward(); err != nil {
				s.log.Debug("admin: relay not told about a spool change", "err", err)
			}
			return
		}
	}
}

// errNoSMTP answers "smtp enable" on a relay that serves no SMTP
// (--no-smtp, or a mode without listeners), whose status stays disabled.
var errNoSMTP = errors.New("no SMTP listener to enable (--no-smtp)")

// setSMTP is "smtp disable|enable": the relay switches, and its status
// must then say what was asked, or the switch did nothing.
func (s *Server) setSMTP(sw SMTPSwitch, on bool) error {
	sw.SetSMTP(on)
	if s.relay.Status().SMTPEnabled != on {
		return errNoSMTP
	}
	return nil
}

// setDNSBL switches DNSBL checks; stopping them for d > 0 starts them
// again after d unless another dnsbl command comes first.
func (s *Server) setDNSBL(on bool, d time.Duration) error {
	sw, ok := s.relay.(DNSBLSwitch)
	if !ok {
		return errors.New("not supported by this relay")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := sw.SetDNSBL(on); err != nil {
		return err
	}
	s.dnsblGen++
	if s.dnsblTimer != nil {
		s.dnsblTimer()
		s.dnsblTimer = nil
	}
	if !on && d > 0 {
		gen := s.dnsblGen
		s.dnsblTimer = s.afterFunc(d, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.dnsblGen == gen && !s.closing {
				s.dnsblTimer = nil
				sw.SetDNSBL(true)
				s.log.Info("admin: dnsbl started again after its timeout")
			}
		})
	}
	return nil
}

// statusReport is the relay's Status with the queue's sizes, for
// GET /api/status and the status command.
type statusReport struct {
	PID           int       `json:"pid"`
	Version       string    `json:"version,omitempty"`
	Started       time.Time `json:"started,omitzero"`
	UptimeSeconds int64     `json:"uptime_seconds"`
	Listeners     []string  `json:"listeners"`
	SMTPEnabled   bool      `json:"smtp_enabled"`
	DNSBLEnabled  bool      `json:"dnsbl_enabled"`
	Sessions      int       `json:"smtp_sessions"`
	Connections   uint64    `json:"smtp_connections"`
	Accepted      uint64    `json:"messages_accepted"`
	Forwarded     uint64    `json:"messages_forwarded"`
	Failed        uint64    `json:"messages_failed"`
	// Queue counts messages by state name: new, ready, claimed, failed,
	// held.
	Queue      map[string]int `json:"queue"`
	QueueError string         `json:"queue_error,omitempty"`
	// Quarantined counts the messages recovery set aside in the spool's
	// quarantine, which nothing delivers until an administrator looks.
	Quarantined int  `json:"quarantined"`
	Flushing    bool `json:"flushing"`
}

func (s *Server) report() statusReport {
	st := s.relay.Status()
	r := statusReport{
		PID: os.Getpid(), Version: s.opts.Version, Started: st.Started, Listeners: st.Listeners,
		SMTPEnabled: st.SMTPEnabled, DNSBLEnabled: st.DNSBLEnabled,
		Sessions: st.Sessions, Connections: st.Connections,
		Accepted: st.Accepted, Forwarded: st.Forwarded, Failed: st.Failed,
		Queue:    map[string]int{},
		Flushing: s.flushing.Load(),
	}
	// The relay knows its SMTP and POP3 listeners; these are the admin
	// interface's own.
	r.Listeners = append(slices.Clip(r.Listeners), s.textAddrs()...)
	if r.Listeners == nil {
		r.Listeners = []string{}
	}
	if !st.Started.IsZero() {
		r.UptimeSeconds = int64(s.opts.Now().Sub(st.Started) / time.Second)
	}
	for state := spool.New; state <= spool.Held; state++ {
		r.Queue[state.String()] = 0
	}
	ents, err := s.opts.Spool.List()
	if err != nil {
		r.QueueError = err.Error()
	}
	for _, e := range ents {
		r.Queue[e.State.String()]++
	}
	r.Quarantined, _ = s.opts.Spool.QuarantineCount()
	return r
}
