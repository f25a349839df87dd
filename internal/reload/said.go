package reload

import (
	"context"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"sync"
)

// Said keeps a Loader's complaints from filling the log at every interval:
// a warning or error that the previous pass logged as well is dropped,
// unless the pass reads everything (SIGHUP), where the administrator asked.
// A file with a bad line is said once when found, again on each SIGHUP,
// and again when it is mended and then broken once more, or replaced by
// another bad version. Its zero value is ready to use; Pass is called from
// one goroutine at a time.
//
// A new version whose error reads as the old one's (the same bad line left
// in while another was added) is told by the error value: a loader keeps
// the error of a version it refused and returns that same value at each
// look until the file changes, and a new version's is another value. An
// error that is a new value at every pass (a missing file's) says nothing
// of versions and is dropped by its text.
type Said struct {
	mu        sync.Mutex
	prev, cur map[string]said
}

// said is what a pass logged under a key: the identities of the error
// values in it, and whether those were the same as in the pass before
// (the loader keeps them: a new value is a new version).
type said struct {
	ids    string
	stable bool
}

// Pass begins a reload pass and returns the logger to use in it, built on
// log, and the function that ends it.
func (s *Said) Pass(log *slog.Logger, all bool) (*slog.Logger, func()) {
	s.mu.Lock()
	s.cur = map[string]said{}
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
		key, ids := k.String(), errorIDs(r)
		h.s.mu.Lock()
		p, again := h.s.prev[key]
		if again && p.stable && p.ids != ids {
			again = false // the same words of another version
		}
		if h.s.cur != nil {
			h.s.cur[key] = said{ids: ids, stable: p.ids == ids && ids != ""}
		}
		h.s.mu.Unlock()
		if again && !h.all {
			return nil
		}
	}
	return h.h.Handle(ctx, r)
}

// errorIDs is the identities (addresses) of the error values among r's
// attributes.
func errorIDs(r slog.Record) string {
	var b strings.Builder
	r.Attrs(func(a slog.Attr) bool {
		if err, ok := a.Value.Any().(error); ok && a.Value.Kind() == slog.KindAny {
			switch v := reflect.ValueOf(err); v.Kind() {
			case reflect.Pointer, reflect.Slice, reflect.Map:
				fmt.Fprintf(&b, "%x,", v.Pointer())
			}
		}
		return true
	})
	return b.String()
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
