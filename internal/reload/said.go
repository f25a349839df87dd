package reload

import (
	"context"
	"log/slog"
	"strings"
	"sync"
)

// Said keeps a Loader's complaints from filling the log at every interval:
// a warning or error that the previous pass logged as well is dropped,
// unless the pass reads everything (SIGHUP), where the administrator asked.
// A file with a bad line is said once when found, again on each SIGHUP,
// and again when it is mended and then broken once more. Its zero value is
// ready to use; Pass is called from one goroutine at a time.
type Said struct {
	mu        sync.Mutex
	prev, cur map[string]bool
}

// Pass begins a reload pass and returns the logger to use in it, built on
// log, and the function that ends it.
func (s *Said) Pass(log *slog.Logger, all bool) (*slog.Logger, func()) {
	s.mu.Lock()
	s.cur = map[string]bool{}
	s.mu.Unlock()
	return slog.New(&saidHandler{s: s, h: log.Handler(), all: all}), func() {
		s.mu.Lock()
		s.prev, s.cur = s.cur, nil
		s.mu.Unlock()
	}
}

type saidHandler struct {
	s     *Said
	h     slog.Handler
	all   bool
	attrs string // what WithAttrs and WithGroup added, for the key
}

func (h *saidHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *saidHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		var k strings.Builder
		k.WriteString(h.attrs)
		k.WriteString(r.Message)
		r.Attrs(func(a slog.Attr) bool {
			k.WriteString("\x00" + a.String())
			return true
		})
		key := k.String()
		h.s.mu.Lock()
		again := h.s.prev[key]
		if h.s.cur != nil {
			h.s.cur[key] = true
		}
		h.s.mu.Unlock()
		if again && !h.all {
			return nil
		}
	}
	return h.h.Handle(ctx, r)
}

func (h *saidHandler) WithAttrs(as []slog.Attr) slog.Handler {
	k := h.attrs
	for _, a := range as {
		k += "\x00" + a.String()
	}
	return &saidHandler{s: h.s, h: h.h.WithAttrs(as), all: h.all, attrs: k}
}

func (h *saidHandler) WithGroup(name string) slog.Handler {
	return &saidHandler{s: h.s, h: h.h.WithGroup(name), all: h.all, attrs: h.attrs + "\x00[" + name}
}
