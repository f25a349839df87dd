package admin

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io/fs"
	"net/http"
	"net/netip"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/metrics"
	"github.com/relaykeeper/relaykeeper/internal/stats"
)

// The dashboard is plain HTML, CSS and JavaScript embedded in the binary:
// nothing is fetched from elsewhere at run time, and the Content Security
// Policy says so to the browser too. Its script builds every element with
// textContent, never innerHTML, since queued messages' headers, addresses
// and the upstream's replies are attacker-controlled text.
//
//go:embed web
var webFiles embed.FS

var indexTemplate = template.Must(template.ParseFS(webFiles, "web/index.html"))

// contentSecurityPolicy allows only the dashboard's own files: no inline
// script, no other origin, no framing.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; " +
	"connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"

// Welcomer says whether an address is welcomelisted: *enforce.Welcomelist.
type Welcomer interface {
	Welcome(ip netip.Addr, hostname string) bool
}

// BanStore is the enforcer's ban list as the dashboard changes it.
// *enforce.Bans implements it.
type BanStore interface {
	List() []enforce.BanEntry
	// AddNet bans an address (a /32 or /128) or a network; Lift lifts
	// the bans overlapping one (an address inside a banned network lifts
	// that network's ban) and returns them.
	AddNet(p netip.Prefix, d time.Duration, reason string) (enforce.BanEntry, error)
	Lift(p netip.Prefix) ([]enforce.BanEntry, error)
}

// BlockStore is the enforcer's table of blocked sender domains.
// enforce.BlockTable implements it.
type BlockStore interface {
	BlockedDomains() ([]enforce.BlockedDomain, error)
	Block(domain, reason string, now time.Time) (bool, error)
	Unblock(domain string) (bool, error)
}

// Live is what the relay has seen lately: the enforcer's actions, the
// alerts and the rejection rates. *metrics.Metrics implements it.
type Live interface {
	Recent() []metrics.Action
	Alerts() []metrics.Alert
	Rates(since time.Time) []stats.ClientRate
}

// Traffic counts messages per minute. *metrics.Metrics implements it.
type Traffic interface {
	Activity(now time.Time, minutes int) []metrics.Minute
}

// Pacer reports each destination's pace. *metrics.Metrics implements it,
// from the scheduler's pace lines in the mail log.
type Pacer interface {
	Paces() []metrics.Pace
}

// csrfHeader carries the dashboard's token on every request that changes
// something.
const csrfHeader = "X-Relaykeeper-Csrf"

func newCSRFToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// fromBrowser reports whether a request may carry a browser's ambient
// credentials: a browser sends Origin or Sec-Fetch-Site with every
// state-changing request, and Basic credentials are remembered by it. A
// Bearer token is never sent by a browser on its own.
func fromBrowser(r *http.Request) bool {
	if scheme, _, _ := strings.Cut(r.Header.Get("Authorization"), " "); strings.EqualFold(scheme, "Basic") {
		return true
	}
	return r.Header.Get("Origin") != "" || r.Header.Get("Sec-Fetch-Site") != "" || r.Header.Get("Cookie") != ""
}

// csrf refuses a state-changing request from a browser without the page's
// token, on top of the Origin and Sec-Fetch-Site checks of
// http.CrossOriginProtection: a page on another origin can neither read
// the token nor set the header without a CORS preflight, which is never
// granted.
func (s *Server) csrf(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
		default:
			if fromBrowser(r) && subtle.ConstantTimeCompare([]byte(r.Header.Get(csrfHeader)), []byte(s.csrfToken)) != 1 {
				writeError(w, http.StatusForbidden, "missing or wrong "+csrfHeader+" header: reload the dashboard")
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// securityHeaders go on every response.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}

// dashboardRoutes adds the dashboard's page, files and endpoints.
func (s *Server) dashboardRoutes(mux *http.ServeMux) {
	static, _ := fs.Sub(webFiles, "web")
	files := http.FileServerFS(static)
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A name that is no valid file name (a byte that is not
		// UTF-8, "/static/%F9") is no file: 404, not the file
		// server's 500 for fs.ErrInvalid.
		if name := strings.TrimPrefix(r.URL.Path, "/"); name != "" && !fs.ValidPath(strings.TrimSuffix(name, "/")) {
			http.NotFound(w, r)
			return
		}
		// The page is a template that only GET / fills in: served
		// as a file (a directory's index.html), it would be a second
		// dashboard whose token is "{{.CSRF}}" and whose every
		// change is refused.
		if name := strings.TrimPrefix(r.URL.Path, "/"); name == "" || strings.HasSuffix(name, "/") || path.Base(name) == "index.html" {
			http.NotFound(w, r)
			return
		}
		files.ServeHTTP(w, r)
	})))
	mux.HandleFunc("GET /{$}", s.getIndex)
	mux.Handle("/api/bans", methods{http.MethodGet: s.getBans, http.MethodPost: s.postBan})
	mux.Handle("/api/bans/{ip}", methods{http.MethodDelete: s.deleteBan})
	mux.Handle("/api/blocks", methods{http.MethodGet: s.getBlocks, http.MethodPost: s.postBlock})
	mux.Handle("/api/blocks/{domain}", methods{http.MethodDelete: s.deleteBlock})
	mux.Handle("/api/actions", methods{http.MethodGet: s.getActions})
	mux.Handle("/api/alerts", methods{http.MethodGet: s.getAlerts})
	mux.Handle("/api/rates", methods{http.MethodGet: s.getRates})
	mux.Handle("/api/activity", methods{http.MethodGet: s.getActivity})
	mux.Handle("/api/paces", methods{http.MethodGet: s.getPaces})
}

func (s *Server) getIndex(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	indexTemplate.Execute(w, struct {
		CSRF   string
		Static staticView
	}{s.csrfToken, s.staticView()})
}

// notConfigured answers for a part the relay runs without.
func notConfigured(w http.ResponseWriter, what string) {
	writeError(w, http.StatusNotImplemented, what+" is not configured on this relay")
}

func (s *Server) getBans(w http.ResponseWriter, r *http.Request) {
	if s.opts.Bans == nil {
		notConfigured(w, "enforcement (the ban list)")
		return
	}
	// Each ban with "not_applied", as bans list --json has it: a ban of
	// a welcomelisted address is ignored while it is listed.
	writeJSON(w, http.StatusOK, struct {
		Bans []json.RawMessage `json:"bans"`
	}{enforce.ListedBans(s.opts.Bans.List(), s.opts.Welcome)})
}

// banRequest is the body of POST /api/bans.
type banRequest struct {
	IP       string `json:"ip"`
	Duration string `json:"duration"`
	Reason   string `json:"reason"`
}

// readJSON decodes a small JSON body into v, answering 400 itself.
func readJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "bad JSON body: "+err.Error())
		return false
	}
	return true
}

func (s *Server) postBan(w http.ResponseWriter, r *http.Request) {
	if s.opts.Bans == nil {
		notConfigured(w, "enforcement (the ban list)")
		return
	}
	var req banRequest
	if !readJSON(w, r, &req) {
		return
	}
	ip, err := enforce.ParseBanTarget(strings.TrimSpace(req.IP))
	if err != nil {
		writeError(w, http.StatusBadRequest, "ip: "+err.Error())
		return
	}
	d := 4 * time.Hour
	if req.Duration != "" {
		if d, err = time.ParseDuration(req.Duration); err != nil || d <= 0 {
			writeError(w, http.StatusBadRequest, "duration "+strconv.Quote(req.Duration)+": want a positive duration such as 4h")
			return
		}
	}
	reason := req.Reason
	if reason == "" {
		reason = "banned from the admin dashboard"
	}
	b, err := s.opts.Bans.AddNet(ip, d, reason)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	s.log.Info("admin: ban", "ip", ip, "until", b.Until, "client", r.RemoteAddr)
	writeJSON(w, http.StatusOK, enforce.ListedBans([]enforce.BanEntry{b}, s.opts.Welcome)[0])
}

func (s *Server) deleteBan(w http.ResponseWriter, r *http.Request) {
	if s.opts.Bans == nil {
		notConfigured(w, "enforcement (the ban list)")
		return
	}
	ip, err := enforce.ParseBanTarget(r.PathValue("ip"))
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	lifted, err := s.opts.Bans.Lift(ip)
	switch {
	case err != nil:
		writeError(w, http.StatusInternalServerError, err.Error())
	case len(lifted) == 0:
		writeError(w, http.StatusNotFound, r.PathValue("ip")+" is not banned")
	default:
		text := strings.TrimSpace(enforce.LiftedText(r.PathValue("ip"), lifted))
		s.log.Info("admin: unban", "ip", r.PathValue("ip"), "lifted", text, "client", r.RemoteAddr)
		writeJSON(w, http.StatusOK, struct {
			done
			Lifted []enforce.BanEntry `json:"lifted"`
			Text   string             `json:"text"`
		}{done{Status: "OK"}, lifted, text})
	}
}

func (s *Server) getBlocks(w http.ResponseWriter, r *http.Request) {
	if s.opts.Blocks == nil {
		notConfigured(w, "enforcement (the sender access table)")
		return
	}
	list, err := s.opts.Blocks.BlockedDomains()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Blocks []enforce.BlockedDomain `json:"blocks"`
	}{list})
}

// blockRequest is the body of POST /api/blocks.
type blockRequest struct {
	Domain string `json:"domain"`
	Reason string `json:"reason"`
}

func (s *Server) postBlock(w http.ResponseWriter, r *http.Request) {
	if s.opts.Blocks == nil {
		notConfigured(w, "enforcement (the sender access table)")
		return
	}
	var req blockRequest
	if !readJSON(w, r, &req) {
		return
	}
	reason := req.Reason
	if reason == "" {
		reason = "blocked from the admin dashboard"
	}
	added, err := s.opts.Blocks.Block(req.Domain, reason, s.opts.Now())
	if err != nil && !added {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	s.log.Info("admin: block", "domain", req.Domain, "added", added, "err", err, "client", r.RemoteAddr)
	out := done{Status: "OK"}
	switch {
	case err != nil:
		out.Detail = "added, but: " + err.Error()
	case !added:
		out.Detail = "the table lists this domain or a parent already"
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) deleteBlock(w http.ResponseWriter, r *http.Request) {
	if s.opts.Blocks == nil {
		notConfigured(w, "enforcement (the sender access table)")
		return
	}
	removed, err := s.opts.Blocks.Unblock(r.PathValue("domain"))
	switch {
	case err != nil && !removed:
		writeError(w, http.StatusBadRequest, err.Error())
	case !removed:
		writeError(w, http.StatusNotFound, r.PathValue("domain")+" is not in the table")
	default:
		s.log.Info("admin: unblock", "domain", r.PathValue("domain"), "err", err, "client", r.RemoteAddr)
		out := done{Status: "OK"}
		if err != nil {
			out.Detail = "removed, but: " + err.Error()
		}
		writeJSON(w, http.StatusOK, out)
	}
}

func (s *Server) getActions(w http.ResponseWriter, r *http.Request) {
	if s.opts.Live == nil {
		notConfigured(w, "live statistics")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Actions []metrics.Action `json:"actions"`
	}{s.opts.Live.Recent()})
}

func (s *Server) getAlerts(w http.ResponseWriter, r *http.Request) {
	if s.opts.Live == nil {
		notConfigured(w, "live statistics")
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Alerts []metrics.Alert `json:"alerts"`
	}{s.opts.Live.Alerts()})
}

func (s *Server) getRates(w http.ResponseWriter, r *http.Request) {
	if s.opts.Live == nil {
		notConfigured(w, "live statistics")
		return
	}
	hours := 24
	if v := r.URL.Query().Get("hours"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 24 {
			writeError(w, http.StatusBadRequest, "hours: want 1 to 24")
			return
		}
		hours = n
	}
	out := struct {
		Threshold stats.Threshold    `json:"threshold"`
		Rates     []stats.ClientRate `json:"rates"`
		Truncated bool               `json:"truncated,omitempty"`
	}{Threshold: s.threshold()}
	limit := -1
	if v := r.URL.Query().Get("limit"); v != "" {
		var err error
		if limit, err = parseLimit(v); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
	}
	out.Rates = s.opts.Live.Rates(s.opts.Now().Add(-time.Duration(hours) * time.Hour))
	if limit >= 0 && len(out.Rates) > limit {
		out.Rates, out.Truncated = out.Rates[:limit], true
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) threshold() stats.Threshold {
	if s.opts.Threshold == (stats.Threshold{}) {
		return stats.DefaultThreshold
	}
	return s.opts.Threshold
}

func (s *Server) getActivity(w http.ResponseWriter, r *http.Request) {
	if s.opts.Traffic == nil {
		notConfigured(w, "live statistics")
		return
	}
	minutes := 180
	if v := r.URL.Query().Get("minutes"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 360 {
			writeError(w, http.StatusBadRequest, "minutes: want 1 to 360")
			return
		}
		minutes = n
	}
	writeJSON(w, http.StatusOK, struct {
		Minutes []metrics.Minute `json:"minutes"`
	}{s.opts.Traffic.Activity(s.opts.Now(), minutes)})
}

func (s *Server) getPaces(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Paces []metrics.Pace `json:"paces"`
		Note  string         `json:"note,omitempty"`
	}{Paces: []metrics.Pace{}}
	if s.opts.Pacer == nil {
		out.Note = "this relay's scheduler does not report paces"
	} else if p := s.opts.Pacer.Paces(); p != nil {
		out.Paces = p
	}
	writeJSON(w, http.StatusOK, out)
}
