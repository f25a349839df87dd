package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/connlimit"
	"github.com/relaykeeper/relaykeeper/internal/queue"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// ServeAPI serves the HTTP JSON API on l until Shutdown or Close, after
// which it returns ErrServerClosed. It refuses, with ErrPasswordRequired, a
// listener that is not on a loopback address unless a password is set.
func (s *Server) ServeAPI(l net.Listener) error {
	if err := s.CheckListener(l); err != nil {
		return err
	}
	h := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		// Requests end with the server, so that a flush does not hold
		// up Shutdown.
		BaseContext: func(net.Listener) context.Context { return s.ctx },
	}
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.httpSrvs[h] = struct{}{}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.httpSrvs, h)
		s.mu.Unlock()
	}()
	err := h.Serve(connlimit.Listener(l, &s.httpLimit, func(why string) string {
		s.log.Warn("admin: HTTP client refused: " + why)
		body := `{"error": "` + why + `; try again later"}` + "\n"
		return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 10\r\n" +
			"Connection: close\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body
	}))
	if errors.Is(err, http.ErrServerClosed) {
		return ErrServerClosed
	}
	return fmt.Errorf("admin: %w", err)
}

// Handler returns the HTTP API, for a caller that runs its own http.Server.
// Listener checks are then the caller's: the handler asks for the password
// when one is set, and otherwise trusts any client that names a loopback
// host.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) newHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/api/status", methods{http.MethodGet: s.getStatus})
	mux.Handle("/api/queue", methods{http.MethodGet: s.getQueue})
	mux.Handle("/api/queue/{id}", methods{http.MethodGet: s.getMessage, http.MethodDelete: s.deleteMessage})
	mux.Handle("/api/queue/{id}/content", methods{http.MethodGet: s.getContent})
	mux.Handle("/api/queue/{id}/{action}", methods{http.MethodPost: s.changeMessage})
	mux.Handle("/api/unfail-all", methods{http.MethodPost: s.postUnfailAll})
	mux.Handle("/api/flush", methods{http.MethodPost: s.postFlush})
	mux.Handle("/api/forward", methods{http.MethodPost: s.postForward})
	mux.Handle("/api/smtp", methods{http.MethodPost: s.postSMTP})
	mux.Handle("/api/dnsbl", methods{http.MethodPost: s.postDNSBL})
	if s.opts.Metrics != nil {
		mux.Handle("/metrics", s.opts.Metrics)
	}
	s.dashboardRoutes(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
	})
	csrf := http.NewCrossOriginProtection()
	csrf.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "cross-origin request refused")
	}))
	return s.recoverer(s.guard(csrf.Handler(s.csrf(mux))))
}

// methods dispatches on the request method and answers 405 in JSON (the
// mux's own 405 is plain text).
type methods map[string]http.HandlerFunc

func (m methods) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, ok := m[r.Method]
	if !ok && r.Method == http.MethodHead {
		h, ok = m[http.MethodGet]
	}
	if !ok {
		allow := make([]string, 0, len(m))
		for k := range m {
			allow = append(allow, k)
		}
		slices.Sort(allow)
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed; use "+strings.Join(allow, " or "))
		return
	}
	h(w, r)
}

// recoverer turns a panic into a 500 and a log line, so that a bug in one
// endpoint does not cut the connection without a word.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.Error("admin: panic in HTTP handler", "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				writeError(w, http.StatusInternalServerError, "internal error")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

// guard checks the Bearer token when a password is set, and otherwise
// that the client named a loopback host: a web page that rebinds its own
// name to 127.0.0.1 sends its name, not ours.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil && !s.clientAllowed(net.TCPAddrFromAddrPort(ap)) {
			writeError(w, http.StatusForbidden, "remote clients are not allowed (--remote-clients)")
			return
		}
		securityHeaders(w)
		if s.requirePassword() {
			ip := addrIP(r.RemoteAddr)
			offered := r.Header.Get("Authorization") != ""
			// A request without credentials is a browser's first
			// one, not a guess.
			allowed, ok := true, false
			if offered {
				allowed, ok = s.tryPassword(ip, func() bool { return s.httpPasswordOK(r) })
			}
			if !allowed {
				s.log.Warn("admin: HTTP password refused: too many wrong ones from this address", "client", r.RemoteAddr)
				writeError(w, http.StatusTooManyRequests, "too many wrong passwords from your address; try again later")
				return
			}
			if !ok {
				s.log.Warn("admin: HTTP request without the right password", "client", r.RemoteAddr, "path", r.URL.Path)
				// A browser asks for Basic credentials; tools send a
				// Bearer token.
				w.Header().Add("WWW-Authenticate", `Basic realm="relaykeeper admin", charset="UTF-8"`)
				w.Header().Add("WWW-Authenticate", `Bearer realm="relaykeeper admin"`)
				writeError(w, http.StatusUnauthorized, "the admin password is required as a Bearer token (or a Basic password)")
				return
			}
		} else if !loopbackHost(r.Host) {
			writeError(w, http.StatusForbidden, "host "+strconv.Quote(r.Host)+" refused: without a password only loopback names are served")
			return
		}
		next.ServeHTTP(w, r)
	})
}

// httpPasswordOK checks the password given as a Bearer token, or as the
// password of HTTP Basic credentials (any user name), which is what a
// browser can send.
func (s *Server) httpPasswordOK(r *http.Request) bool {
	if _, pw, ok := r.BasicAuth(); ok {
		return s.checkPassword(pw)
	}
	scheme, token, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	return strings.EqualFold(scheme, "Bearer") && s.checkPassword(strings.TrimSpace(token))
}

// loopbackHost reports whether a Host header names this machine: localhost
// or a loopback address, with or without a port. An empty Host (HTTP/1.0)
// comes from no browser and is let through.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if host == "" || strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// apiError is the body of every error response.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

func (s *Server) getStatus(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.report())
}

// queueListing is the body of GET /api/queue, as `relaykeeper queue list
// --json` prints it. With limit=N, Messages holds the first N and
// Truncated says that there were more; Requests and Bytes count them all.
type queueListing struct {
	Spool     string          `json:"spool"`
	Messages  []queue.Message `json:"messages"`
	Requests  int             `json:"requests"`
	Bytes     int64           `json:"bytes"`
	Truncated bool            `json:"truncated,omitempty"`
}

// getQueue lists messages; sender, recipient, reply and state filter as
// the command's switches do, state taking a comma-separated list or
// several parameters; limit keeps the first N.
func (s *Server) getQueue(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var f queue.Filter
	limit := -1
	for k, vs := range q {
		switch k {
		case "limit":
			var err error
			if limit, err = parseLimit(vs[len(vs)-1]); err != nil {
				writeError(w, http.StatusBadRequest, err.Error())
				return
			}
		case "sender":
			f.Sender = vs[len(vs)-1]
		case "recipient":
			f.Recipient = vs[len(vs)-1]
		case "reply":
			f.Reply = vs[len(vs)-1]
		case "state":
			for _, v := range vs {
				for name := range strings.SplitSeq(v, ",") {
					st, ok := spool.ParseState(strings.TrimSpace(name))
					if !ok {
						writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown state %q; want new, ready, claimed, failed or held", name))
						return
					}
					f.States = append(f.States, st)
				}
			}
		default:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown parameter %q; want sender, recipient, reply, state or limit", k))
			return
		}
	}
	msgs, err := queue.List(s.opts.Spool, f)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	out := queueListing{Spool: s.opts.Spool.Dir(), Messages: msgs, Requests: len(msgs)}
	if out.Messages == nil {
		out.Messages = []queue.Message{}
	}
	for _, m := range msgs {
		out.Bytes += m.Size
	}
	if limit >= 0 && len(out.Messages) > limit {
		out.Messages, out.Truncated = out.Messages[:limit], true
	}
	writeJSON(w, http.StatusOK, out)
}

// parseLimit reads a limit=N parameter: how many entries of a listing to
// send.
func parseLimit(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("limit %q: want a number of entries", v)
	}
	return n, nil
}

// messageShown is the body of GET /api/queue/{id}, as `relaykeeper queue
// show --json` prints it.
type messageShown struct {
	queue.Message
	EnvelopeFile string `json:"envelope_file,omitempty"`
	ContentFile  string `json:"content_file"`
	Served       bool   `json:"served,omitempty"` // no files yet: queue.Files
	Header       string `json:"header"`
}

func (s *Server) getMessage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	m, err := queue.Get(s.opts.Spool, id)
	if err != nil {
		writeSpoolError(w, id, err)
		return
	}
	hdr, err := queue.Header(s.opts.Spool, id)
	if err != nil {
		writeSpoolError(w, id, err)
		return
	}
	out := messageShown{Message: m, Header: string(hdr)}
	out.EnvelopeFile, out.ContentFile, out.Served = queue.Files(s.opts.Spool, id, m.State)
	writeJSON(w, http.StatusOK, out)
}

// getContent sends the message as stored: CRLF line endings, relaykeeper's
// Received header first.
func (s *Server) getContent(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	f, err := queue.OpenContent(s.opts.Spool, id)
	if err != nil {
		writeSpoolError(w, id, err)
		return
	}
	defer f.Close()
	w.Header().Set("Content-Type", "message/rfc822")
	w.Header().Set("Cache-Control", "no-store")
	io.Copy(w, f)
}

func writeSpoolError(w http.ResponseWriter, id string, err error) {
	if errors.Is(err, spool.ErrNotFound) {
		writeError(w, http.StatusNotFound, id+": no such message")
		return
	}
	writeError(w, http.StatusInternalServerError, err.Error())
}

// actions are the changes POST /api/queue/{id}/{action} makes.
var actions = map[string]queue.Action{
	"hold":    queue.Hold,
	"release": queue.Release,
	"retry":   queue.Retry,
}

func (s *Server) changeMessage(w http.ResponseWriter, r *http.Request) {
	act, ok := actions[r.PathValue("action")]
	if !ok {
		writeError(w, http.StatusNotFound, "no such action "+strconv.Quote(r.PathValue("action"))+"; want hold, release or retry")
		return
	}
	s.change(w, r, act)
}

func (s *Server) deleteMessage(w http.ResponseWriter, r *http.Request) {
	s.change(w, r, queue.Delete)
}

// change applies act to one message and answers with its queue.Result;
// the status code says whether it was done.
func (s *Server) change(w http.ResponseWriter, r *http.Request, act queue.Action) {
	res := queue.Apply(s.opts.Spool, act, []string{r.PathValue("id")})
	s.changed(res)
	s.log.Info("admin: "+act.String(), "id", res[0].ID, "outcome", res[0].Outcome, "client", r.RemoteAddr)
	writeJSON(w, outcomeStatus(res[0].Outcome), res[0])
}

func outcomeStatus(o queue.Outcome) int {
	switch o {
	case queue.Done, queue.Unchanged:
		return http.StatusOK
	case queue.NotFound:
		return http.StatusNotFound
	case queue.Busy, queue.Refused:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}

// queueChanged is the body of POST /api/unfail-all, as `relaykeeper queue
// retry --json` prints it (without the relay notice: the relay is told
// directly).
type queueChanged struct {
	Action  string         `json:"action"`
	Spool   string         `json:"spool"`
	Results []queue.Result `json:"results"`
}

func (s *Server) postUnfailAll(w http.ResponseWriter, r *http.Request) {
	res, err := s.unfailAll()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.log.Info("admin: unfail-all", "messages", len(res), "client", r.RemoteAddr)
	if res == nil {
		res = []queue.Result{}
	}
	writeJSON(w, http.StatusOK, queueChanged{Action: queue.Retry.String(), Spool: s.opts.Spool.Dir(), Results: res})
}

// done is the body of a successful command.
type done struct {
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

func (s *Server) postFlush(w http.ResponseWriter, r *http.Request) {
	s.log.Info("admin: flush", "client", r.RemoteAddr)
	err := s.flush(r.Context())
	s.log.Info("admin: flush done", "err", err, "client", r.RemoteAddr)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, done{Status: "OK"})
	case errors.Is(err, errNothingToSend):
		writeJSON(w, http.StatusOK, done{Status: "OK", Detail: err.Error()})
	case errors.Is(err, errStillWorking):
		writeError(w, http.StatusConflict, "a flush is under way already")
	case r.Context().Err() != nil:
		writeError(w, http.StatusServiceUnavailable, "flush cut short: "+err.Error())
	default:
		writeError(w, http.StatusBadGateway, err.Error())
	}
}

func (s *Server) postForward(w http.ResponseWriter, r *http.Request) {
	if err := s.forward(); err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusAccepted, done{Status: "OK"})
}

// boolParam reads a required true/false query parameter.
func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, fmt.Errorf("parameter %s=true|false is required", name)
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("parameter %s=%q: want true or false", name, v)
	}
	return b, nil
}

func (s *Server) postSMTP(w http.ResponseWriter, r *http.Request) {
	on, err := boolParam(r, "enabled")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	sw, ok := s.relay.(SMTPSwitch)
	if !ok {
		writeError(w, http.StatusNotImplemented, "not supported by this relay")
		return
	}
	s.log.Info("admin: smtp", "enabled", on, "client", r.RemoteAddr)
	if err := s.setSMTP(sw, on); err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct {
		SMTPEnabled bool `json:"smtp_enabled"`
	}{on})
}

func (s *Server) postDNSBL(w http.ResponseWriter, r *http.Request) {
	on, err := boolParam(r, "enabled")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	var secs uint64
	if v := r.URL.Query().Get("timeout"); v != "" {
		secs, err = strconv.ParseUint(v, 10, 32)
		if err != nil || on {
			writeError(w, http.StatusBadRequest, "parameter timeout: whole seconds, with enabled=false only")
			return
		}
	}
	if _, ok := s.relay.(DNSBLSwitch); !ok {
		writeError(w, http.StatusNotImplemented, "not supported by this relay")
		return
	}
	if err := s.setDNSBL(on, time.Duration(secs)*time.Second); err != nil {
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	s.log.Info("admin: dnsbl", "enabled", on, "seconds", secs, "client", r.RemoteAddr)
	writeJSON(w, http.StatusOK, struct {
		DNSBLEnabled   bool   `json:"dnsbl_enabled"`
		TimeoutSeconds uint64 `json:"timeout_seconds,omitempty"`
	}{on, secs})
}
