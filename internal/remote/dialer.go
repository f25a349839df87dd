package remote

import (
	"context"
	"log/slog"
)

// Peers says which upstreams have their whole conversation traced
// (Postfix's debug_peer_list).
type Peers interface {
	Upstream(addr string) bool
}

// Dialer opens sessions with fixed Options: the relay's smarthost, the
// proxy's upstream, the content filter.
type Dialer struct {
	Options Options
	// Debug, if set, picks the upstreams whose commands and replies go to
	// Log at level Info.
	Debug Peers
	Log   *slog.Logger
}

// Dial is Dial with the Dialer's options.
func (d *Dialer) Dial(ctx context.Context, addr string) (*Conn, error) {
	opts := d.Options
	if d.Debug != nil && d.Debug.Upstream(addr) {
		opts.Trace = TraceTo(d.Log, addr)
	}
	return Dial(ctx, addr, opts)
}

// TraceTo is an Options.Trace that writes each command and reply of the
// session with peer to l at level Info (Postfix's debug_peer_list), or nil
// without a logger.
func TraceTo(l *slog.Logger, peer string) func(dir, line string) {
	if l == nil {
		return nil
	}
	l = l.With("debug_peer", peer)
	return func(dir, line string) { l.Info("smtp", "dir", dir, "line", line) }
}
