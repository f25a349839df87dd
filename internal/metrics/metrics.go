// Package metrics keeps relaykeeper's Prometheus metrics and the live figures
// the admin dashboard shows: messages per minute, the upstream's rejection
// rates per client, the enforcer's recent actions and the alerts.
//
// Almost everything is counted from the mail log's events (Metrics is a
// maillog.Observer), so that the SMTP server, the scheduler and the enforcer
// need no second reporting path and the metrics cannot disagree with the
// log. What is a state rather than an event (the queue, bans, open sessions)
// is read when Prometheus scrapes, through small interfaces. fsync latency
// comes from the spool (Metrics is a spool.SyncObserver).
//
// Labels are bounded: stage, result, reply class, verdict and enhanced
// status code take few values; a destination is a recipient domain, the
// first MaxDestinations of them, and "other" after that. No label ever
// holds an address, a client or a message id.
package metrics

import (
	"cmp"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/relaykeeper/relaykeeper/internal/stats"
)

// MaxDestinations bounds the destination label: the first this many
// recipient domains seen get their own series, the rest count as "other".
const MaxDestinations = 50

// Options configures New. Every source may be nil: its metrics are then
// not exported.
type Options struct {
	// Queue is the spool, read at each scrape for the queue's gauges.
	Queue Queue
	// Bans is the enforcer's ban list; Blocks its blocked sender domains.
	Bans   BanList
	Blocks BlockList
	// Sessions counts the open SMTP sessions.
	Sessions SessionCounter
	// Threshold is when a rejection rate alerts; zero means
	// stats.DefaultThreshold.
	Threshold stats.Threshold
	// Log receives the alerts; defaults to discarding.
	Log *slog.Logger
}

// Metrics is the registry and the live figures. Create it with New; its
// methods are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry
	log *slog.Logger

	connections   prometheus.Counter
	accepted      prometheus.Counter
	acceptedBytes prometheus.Counter
	refused       *prometheus.CounterVec
	proxied       *prometheus.CounterVec
	deliveries    *prometheus.CounterVec
	delay         *prometheus.HistogramVec
	replies       *prometheus.CounterVec
	verdicts      *prometheus.CounterVec
	actions       *prometheus.CounterVec
	alertsTotal   *prometheus.CounterVec
	fsync         *prometheus.HistogramVec
	popDeleted    prometheus.Counter

	// The admin status counters, since the start: messages accepted
	// (stored, or relayed by the proxy), recipients forwarded and failed.
	nConnections, nAccepted, nForwarded, nFailed atomic.Uint64

	dests    destinations
	activity activity
	rates    stats.Rates
	recent   ring[Action]
	alerts   ring[Alert]
	paces    paces
}

// New returns Metrics with a registry of its own holding relaykeeper's
// metrics and the Go runtime and process collectors.
func New(opts Options) *Metrics {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg, log: opts.Log}
	m.rates.Threshold = opts.Threshold
	m.rates.Keep = 25 * time.Hour
	m.recent.max, m.alerts.max = 200, 100
	f := promauto{reg}
	m.connections = f.counter("relaykeeper_smtp_connections_total", "SMTP connections accepted.")
	m.accepted = f.counter("relaykeeper_messages_accepted_total", "Messages written to the spool and acknowledged with 250.")
	m.acceptedBytes = f.counter("relaykeeper_messages_accepted_bytes_total", "Bytes of the messages accepted.")
	m.popDeleted = f.counter("relaykeeper_pop3_deleted_total", "Messages POP3 clients removed from the spool (DELE, then QUIT).")
	m.refused = f.counterVec("relaykeeper_smtp_refused_total",
		"Connections and commands refused, by stage (connect, mail, rcpt, data, end-of-data, auth, command, ...) and reason (the enhanced status code, or the reply code).",
		"stage", "reason")
	m.proxied = f.counterVec("relaykeeper_messages_proxied_total", "Messages relayed during the client's transaction (proxy mode), by result.", "result")
	m.deliveries = f.counterVec("relaykeeper_deliveries_total",
		"Delivery attempts per recipient, by result (sent, deferred, bounced) and destination (recipient domain; \"other\" past the first 50).",
		"result", "destination")
	m.delay = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "relaykeeper_delivery_delay_seconds",
		Help:    "Time from a message's arrival to each recipient's delivery attempt, by result.",
		Buckets: []float64{0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600, 5 * 24 * 3600},
	}, []string{"result"})
	reg.MustRegister(m.delay)
	m.replies = f.counterVec("relaykeeper_upstream_replies_total",
		"Replies from upstream servers to delivery attempts and proxied transactions, by class (2xx, 4xx, 5xx).", "class")
	m.verdicts = f.counterVec("relaykeeper_upstream_verdicts_total",
		"Upstream refusals by class and verdict: the enforcer's (ban, block-domain, encapsulate, none, report) and the scheduler's (pace, pace-recipient, quota, alert, from its mail-log lines).",
		"class", "verdict")
	// Every class and verdict at 0 from the start, as the alert causes
	// below: the shipped rules take increase() of these series, and a
	// series that first appears at 1 has none in Prometheus, so the
	// first refusal of a class (or the first ban) went uncounted in the
	// upstream rejection rate rule.
	for _, class := range []string{"2xx", "4xx", "5xx"} {
		m.replies.WithLabelValues(class)
	}
	for _, class := range []string{"4xx", "5xx"} {
		for _, v := range []string{"ban", "block-domain", "encapsulate", "none", "report", "pace", "pace-recipient", "quota", "alert"} {
			m.verdicts.WithLabelValues(class, v)
		}
	}
	m.actions = f.counterVec("relaykeeper_enforce_actions_total",
		"Actions in the mail log that the enforcer and the relay took on clients and domains (ban, block, spare, hold, ...).", "action")
	m.alertsTotal = f.counterVec("relaykeeper_alerts_total",
		"Alerts raised: rejection rates over the threshold (client_rejection_rate, relay_rejection_rate) and the relay's own faults (alert).", "cause")
	for _, cause := range []string{"alert", "client_rejection_rate", "relay_rejection_rate"} {
		// At 0 from the start: Prometheus sees no increase in a
		// series that first appears at 1, and an alert rule on
		// increase() would miss the relay's first alert.
		m.alertsTotal.WithLabelValues(cause)
	}
	m.fsync = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "relaykeeper_spool_fsync_seconds",
		Help:    "Duration of the spool's fsyncs, of files and of the directory.",
		Buckets: []float64{0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1},
	}, []string{"kind"})
	reg.MustRegister(m.fsync)
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "relaykeeper_up", Help: "1 while the relay runs."}, func() float64 { return 1 }))
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(&stateCollector{opts: opts})
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "relaykeeper_paced_destinations",
		Help: "Destinations (and recipients) the scheduler is pacing after rate replies, from the mail log's pace lines.",
	}, func() float64 { return float64(len(m.Paces())) }))
	return m
}

// promauto registers as it creates, on one registry.
type promauto struct{ reg *prometheus.Registry }

func (p promauto) counter(name, help string) prometheus.Counter {
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
	p.reg.MustRegister(c)
	return c
}

func (p promauto) counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	p.reg.MustRegister(c)
	return c
}

// Handler serves the metrics in Prometheus's text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorLog: slog.NewLogLogger(m.log.Handler(), slog.LevelWarn)})
}

// Registry is the registry, for tests.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveSync is the spool's fsync hook.
func (m *Metrics) ObserveSync(kind string, d time.Duration) {
	m.fsync.WithLabelValues(kind).Observe(d.Seconds())
}

// Verdict counts one upstream refusal the enforcer classified; code is the
// reply code and verdict the enforcer's action. The scheduler's own
// verdicts about the relay's rate and account (pace, quota, alert) are
// counted from its pace and alert lines instead, since it also reaches
// them for refusals the enforcer never sees (a 421 that ends the session).
func (m *Metrics) Verdict(code int, verdict string) {
	if schedulerVerdict(verdict) {
		return
	}
	m.verdicts.WithLabelValues(replyClass(code), verdict).Inc()
}

func schedulerVerdict(v string) bool {
	return v == "pace" || v == "pace-recipient" || v == "quota" || v == "alert"
}

// atoi is a logged count, 0 if it is none.
func atoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// replyCode is the code a logged reply starts with, 0 if none.
func replyCode(reply string) int {
	if len(reply) < 3 {
		return 0
	}
	code, _ := strconv.Atoi(reply[:3])
	return code
}

// Counters are the admin interface's status counters since the start.
type Counters struct {
	Connections, Accepted, Forwarded, Failed uint64
}

// Counters returns the status counters.
func (m *Metrics) Counters() Counters {
	return Counters{Connections: m.nConnections.Load(), Accepted: m.nAccepted.Load(),
		Forwarded: m.nForwarded.Load(), Failed: m.nFailed.Load()}
}

// actionEvents are the mail-log events the dashboard lists as the
// enforcer's (and the relay's) actions.
var actionEvents = map[string]bool{
	"ban": true, "unban": true, "block": true, "spare": true, "hold": true,
	"encapsulate": true, "pace": true, "alert": true, "report": true, "discard": true,
}

// ObserveEvent is the mail log's hook: every event counts here.
func (m *Metrics) ObserveEvent(t time.Time, event string, kv []string) {
	get := func(k string) string {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i] == k {
				return kv[i+1]
			}
		}
		return ""
	}
	switch event {
	case "connect":
		m.connections.Inc()
		m.nConnections.Add(1)
	case "accept":
		if get("via") != "" {
			// Back from the after-queue content filter: counted
			// when it was first accepted.
			break
		}
		m.accepted.Inc()
		m.nAccepted.Add(1)
		if n, err := strconv.ParseFloat(get("size"), 64); err == nil {
			m.acceptedBytes.Add(n)
		}
		m.activity.add(t, func(c *Minute) { c.Accepted++ })
	case "reject":
		m.refused.WithLabelValues(get("stage"), replyReason(get("reply"))).Inc()
		m.activity.add(t, func(c *Minute) { c.Rejected++ })
		if stats.RelayedRefusal(get) {
			m.upstreamReply(t, get("reply"), get("client"), 1)
		}
	case "proxy":
		// One line for the whole transaction: the client heard 250
		// only for sent, and its recipients count as a stored
		// message's delivery lines do, one each.
		res := get("result")
		m.proxied.WithLabelValues(res).Inc()
		n := max(atoi(get("nrcpt")), 1)
		if res == "sent" {
			m.nAccepted.Add(1)
		}
		m.countResult(res, n)
		m.activity.add(t, func(c *Minute) {
			if res == "sent" {
				c.Accepted++
			}
			c.count(res, n)
		})
		m.upstreamReply(t, get("reply"), get("client"), n)
	case "pop-delete":
		m.popDeleted.Inc()
	case "delivery":
		res := get("result")
		m.deliveries.WithLabelValues(res, m.dests.label(get("to"))).Inc()
		if d, err := strconv.ParseFloat(get("delay"), 64); err == nil {
			m.delay.WithLabelValues(res).Observe(d)
		}
		m.countResult(res, 1)
		m.activity.add(t, func(c *Minute) { c.count(res, 1) })
		m.upstreamReply(t, get("reply"), get("client"), 1)
	}
	switch v := get("verdict"); {
	case event == "pace" && v != "resume":
		m.verdicts.WithLabelValues(replyClass(replyCode(get("reply"))), v).Inc()
	case event == "alert":
		m.verdicts.WithLabelValues(replyClass(replyCode(get("reply"))), "alert").Inc()
	}
	if event == "pace" {
		m.paces.observe(t, get)
	}
	if actionEvents[event] {
		m.actions.WithLabelValues(event).Inc()
		a := Action{Time: t.UTC(), Event: event}
		for i := 0; i+1 < len(kv); i += 2 {
			a.Fields = append(a.Fields, Field{kv[i], kv[i+1]})
		}
		m.recent.add(a)
		if event == "alert" {
			m.alertsTotal.WithLabelValues("alert").Inc()
			m.alerts.add(Alert{Time: t.UTC(), Cause: cmp.Or(get("cause"), "alert"), Text: a.text()})
		}
	}
}

// countResult counts n recipients with result res in the status counters.
func (m *Metrics) countResult(res string, n int) {
	switch res {
	case "sent":
		m.nForwarded.Add(uint64(n))
	case "bounced":
		m.nFailed.Add(uint64(n))
	}
}

// upstreamReply counts a reply that answered for n recipients in its
// class and in the rejection rates, n times (a proxy's reply to a
// message's content counts as the delivery lines of a stored one do), and
// raises an alert when a rate crosses the threshold.
func (m *Metrics) upstreamReply(t time.Time, reply, client string, n int) {
	refused, ok := stats.UpstreamRefusal(reply)
	if !ok {
		return
	}
	code, _ := strconv.Atoi(reply[:3])
	m.replies.WithLabelValues(replyClass(code)).Add(float64(n))
	for _, cr := range m.rates.AddN(t, stats.ClientIP(client), refused, n) {
		cause := "client_rejection_rate"
		what := "client " + cr.Client
		if cr.Client == stats.RelayClient {
			cause, what = "relay_rejection_rate", "the whole relay"
		}
		text := what + ": the upstream refused " + strconv.Itoa(cr.Refused) + " of " + strconv.Itoa(cr.Replies) +
			" replies this hour (" + strconv.FormatFloat(100*cr.Rate, 'f', 1, 64) + "%)"
		m.alertsTotal.WithLabelValues(cause).Inc()
		m.alerts.add(Alert{Time: t.UTC(), Cause: cause, Text: text})
		m.log.Warn("rejection rate over the threshold: "+text, "cause", cause, "client", cr.Client)
	}
}

// Rates returns the rejection rates of the last hours, the latest first.
func (m *Metrics) Rates(since time.Time) []stats.ClientRate { return m.rates.List(since) }

// Recent returns the latest actions, newest first.
func (m *Metrics) Recent() []Action { return m.recent.list() }

// Alerts returns the latest alerts, newest first.
func (m *Metrics) Alerts() []Alert { return m.alerts.list() }

func replyClass(code int) string {
	if code < 200 || code > 599 {
		return "other"
	}
	return strconv.Itoa(code/100) + "xx"
}

var enhancedCode = regexp.MustCompile(`^[245]\.[0-9]{1,3}\.[0-9]{1,3}$`)

// replyReason is a refusal's reason label: its enhanced status code, or
// its reply code, or "other"; never free text.
func replyReason(reply string) string {
	f := strings.Fields(reply)
	if len(f) >= 2 && enhancedCode.MatchString(f[1]) {
		return f[1]
	}
	if len(f) >= 1 && len(f[0]) >= 3 {
		if code, err := strconv.Atoi(f[0][:3]); err == nil && code >= 200 && code <= 599 {
			return f[0][:3]
		}
	}
	return "other"
}

// destinations hands out the bounded destination label.
type destinations struct {
	mu   sync.Mutex // guards seen
	seen map[string]bool
}

func (d *destinations) label(to string) string {
	to = strings.TrimSuffix(strings.TrimPrefix(to, "<"), ">")
	i := strings.LastIndexByte(to, '@')
	if i < 0 || i == len(to)-1 {
		return "none"
	}
	dom := strings.ToLower(to[i+1:])
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seen == nil {
		d.seen = map[string]bool{}
	}
	if d.seen[dom] {
		return dom
	}
	if len(d.seen) >= MaxDestinations {
		return "other"
	}
	d.seen[dom] = true
	return dom
}
