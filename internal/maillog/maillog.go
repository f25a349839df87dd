// Package maillog writes and reads relaykeeper's mail log: one line per mail
// event, for people, for fail2ban and for the enforcer, in a format that is
// documented in docs/maillog.md and pinned by golden tests. Diagnostics go
// elsewhere (log/slog); this log says only what happened to mail.
//
// A line is
//
//	TIME EVENT key=value key=value ...
//
// TIME is RFC 3339 in UTC with milliseconds; EVENT is a lower-case word; keys
// are lower-case words (letters, digits, '_', '-'); a value is written bare unless it is empty or holds a
// space, a quote, '=' or a control character, and then it is a Go-quoted
// string. Keys appear in a fixed order for each event, and new keys are only
// ever added at the end, so a regular expression written today keeps working.
package maillog

import (
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Logger writes mail-log lines. The zero value discards them.
type Logger struct {
	mu  sync.Mutex // guards w
	w   io.Writer
	now func() time.Time
	// obs sees every event; set by Observe before the Logger is shared.
	obs Observer
}

// Observer sees every event a Logger writes, as the fields it was given
// rather than as the formatted line, so that counters (the metrics, the
// admin dashboard's rates) need no parser. ObserveEvent is called after the
// line is written, from the goroutine that logged it; it must not block.
// kv must not be kept or changed.
type Observer interface {
	ObserveEvent(t time.Time, event string, kv []string)
}

// Observe makes o see every event from now on. Call it before the Logger is
// used by more than one goroutine.
func (l *Logger) Observe(o Observer) { l.obs = o }

// New returns a Logger writing to w.
func New(w io.Writer) *Logger {
	return &Logger{w: w, now: time.Now}
}

// NewWithClock returns a Logger whose time comes from now, for tests.
func NewWithClock(w io.Writer, now func() time.Time) *Logger {
	return &Logger{w: w, now: now}
}

// event writes one line: the event, then key/value pairs in the order
// given; kv must have an even length. Whatever the name, keys and values
// hold, the line is one line of printable text: names and keys are made
// words (see word) and values quoted (see Quote).
func (l *Logger) event(event string, kv ...string) {
	if l == nil || (l.w == nil && l.obs == nil) {
		return
	}
	t := l.now()
	if l.obs != nil {
		defer l.obs.ObserveEvent(t, event, kv)
	}
	if l.w == nil {
		return
	}
	var b strings.Builder
	b.Grow(128)
	b.WriteString(t.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	b.WriteByte(' ')
	b.WriteString(word(event))
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteByte(' ')
		b.WriteString(word(kv[i]))
		b.WriteByte('=')
		b.WriteString(Quote(kv[i+1]))
	}
	b.WriteByte('\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, b.String())
}

// isWordByte reports a byte allowed in an event name or a key: lower-case
// letters, digits, '_' and '-'.
func isWordByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// word returns s with every byte that may not stand in an event name or a
// key replaced by '_'; "_" for an empty s.
func word(s string) string {
	if s == "" {
		return "_"
	}
	for i := 0; i < len(s); i++ {
		if !isWordByte(s[i]) {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if !isWordByte(b[j]) {
					b[j] = '_'
				}
			}
			return string(b)
		}
	}
	return s
}

// isWord reports whether s is a valid event name or key.
func isWord(s string) bool { return s != "" && word(s) == s }

// Quote returns v as it appears after "key=": bare, or quoted with Go's
// escapes when it holds a blank, '"', '=', '\\', or anything that is not
// printable: control characters, Unicode's C1 controls among them (U+009B
// is a terminal's CSI, U+0085 a line break to some readers), U+2028 and
// the like, and bytes that are not UTF-8.
func Quote(v string) string {
	if v == "" {
		return `""`
	}
	if !utf8.ValidString(v) {
		return strconv.Quote(v)
	}
	for _, c := range v {
		if c <= ' ' || c == '"' || c == '=' || c == '\\' || !strconv.IsPrint(c) {
			return strconv.Quote(v)
		}
	}
	return v
}

// Addr formats an envelope address as the log shows it: in angle brackets,
// "<>" for the null sender.
func Addr(a string) string { return "<" + a + ">" }

// Connect logs a new SMTP connection. name is the client's confirmed host
// name ("unknown" without one), or "" when names are not looked up, which
// leaves the field out.
func (l *Logger) Connect(client, name, listener string) {
	if name == "" {
		l.event("connect", "client", client, "listener", listener)
		return
	}
	l.event("connect", "client", client, "name", name, "listener", listener)
}

// Reject logs a refused connection or command. stage is connect, helo, mail,
// rcpt, data or auth; reply is the full SMTP reply the client heard.
func (l *Logger) Reject(client, stage, reply string, kv ...string) {
	l.event("reject", append([]string{"client", client, "stage", stage, "reply", reply}, kv...)...)
}

// Accept logs a message written to the spool and acknowledged with 250.
// msgid is its Message-ID header field's value, left out when "" (Postfix's
// cleanup logs it as message-id=, which is how an administrator finds a
// message a user asks about).
func (l *Logger) Accept(id, client, from string, nrcpt int, size int64, auth, msgid string) {
	if auth == "" {
		auth = "-"
	}
	kv := []string{"id", id, "client", client, "from", Addr(from),
		"nrcpt", strconv.Itoa(nrcpt), "size", strconv.FormatInt(size, 10), "auth", auth}
	if msgid != "" {
		kv = append(kv, "message-id", msgid)
	}
	l.event("accept", kv...)
}

// AcceptBack logs a message back from the after-queue content filter,
// written to the spool and acknowledged with 250: client is the client
// that first submitted it, via the filter it came back from; msgid as for
// Accept.
func (l *Logger) AcceptBack(id, client, from string, nrcpt int, size int64, via, msgid string) {
	kv := []string{"id", id, "client", client, "from", Addr(from),
		"nrcpt", strconv.Itoa(nrcpt), "size", strconv.FormatInt(size, 10), "auth", "-", "via", via}
	if msgid != "" {
		kv = append(kv, "message-id", msgid)
	}
	l.event("accept", kv...)
}

// Result is the outcome of one delivery attempt for one recipient.
type Result string

// Delivery results, as Postfix names them.
const (
	Sent     Result = "sent"
	Deferred Result = "deferred"
	Bounced  Result = "bounced"
)

// Delivery is one recipient's delivery attempt.
type Delivery struct {
	ID      string
	To      string
	Relay   string // the upstream as dialled, "host:port", or "none"
	Result  Result
	Delay   time.Duration // since arrival
	Attempt int
	Reply   string // the upstream's full reply, or what went wrong
	Client  string // the client that submitted the message
	// Transport is the log name of the transport used ([transports.NAME]
	// log_name, Postfix's syslog_name), empty for none.
	Transport string
}

// Deliver logs one recipient's delivery attempt.
func (l *Logger) Deliver(d Delivery) {
	kv := []string{"id", d.ID, "to", Addr(d.To), "relay", d.Relay, "result", string(d.Result),
		"delay", strconv.FormatFloat(d.Delay.Seconds(), 'f', 2, 64), "attempt", strconv.Itoa(d.Attempt),
		"reply", d.Reply, "client", d.Client}
	if d.Transport != "" {
		kv = append(kv, "transport", d.Transport)
	}
	l.event("delivery", kv...)
}

// Skip logs a recipient that one MX host put off (a 4xx, or a session that
// ended before the content) while another remained: it goes on to the next
// host in the same attempt, as Postfix logs "host ... said: ..." and tries
// the next. It is no delivery result; the delivery line follows.
func (l *Logger) Skip(d Delivery) {
	l.event("skip", "id", d.ID, "to", Addr(d.To), "relay", d.Relay,
		"delay", strconv.FormatFloat(d.Delay.Seconds(), 'f', 2, 64), "attempt", strconv.Itoa(d.Attempt),
		"reply", d.Reply, "client", d.Client)
}

// Proxy logs a message relayed during the client's transaction, with the
// upstream's reply the client heard; msgid as for Accept.
func (l *Logger) Proxy(id, client, from string, nrcpt int, size int64, relay string, result Result, reply, msgid string) {
	kv := []string{"id", id, "client", client, "from", Addr(from), "nrcpt", strconv.Itoa(nrcpt),
		"size", strconv.FormatInt(size, 10), "relay", relay, "result", string(result), "reply", reply}
	if msgid != "" {
		kv = append(kv, "message-id", msgid)
	}
	l.event("proxy", kv...)
}

// Disconnect logs the end of an SMTP connection.
func (l *Logger) Disconnect(client string, messages int) {
	l.event("disconnect", "client", client, "messages", strconv.Itoa(messages))
}

// Quarantine logs a message moved aside at recovery.
func (l *Logger) Quarantine(id, reason string) {
	l.event("quarantine", "id", id, "reason", reason)
}

// PopDelete logs a message a POP3 client removed from the spool (DELE,
// then QUIT); user is the POP3 account.
func (l *Logger) PopDelete(id, client, user string) {
	l.event("pop-delete", "id", id, "client", client, "user", user)
}

// Auth logs a client's successful SMTP AUTH; user is the identity it
// authenticated as.
func (l *Logger) Auth(client, mech, user string) {
	l.event("auth", "client", client, "mech", mech, "id", user)
}

// Abandon logs a message a filter took over: the client heard success and
// the relay keeps nothing (E-MailRelay's filter exit code 100).
func (l *Logger) Abandon(id, client, from, filter string) {
	l.event("abandon", "id", id, "client", client, "from", Addr(from), "filter", filter)
}

// Discard logs a message dropped on purpose: at receipt by a DISCARD
// action, the client hearing success; or a delivery notice that nobody
// can take. reply is the last reply the message had, if any.
func (l *Logger) Discard(id, client, from string, nrcpt int, reason, reply string) {
	l.event("discard", "id", id, "client", client, "from", Addr(from), "nrcpt", strconv.Itoa(nrcpt),
		"reason", reason, "reply", reply)
}

// Hold logs a message moved to the held state, where it waits for an
// administrator: at receipt (a HOLD action, a milter's quarantine), or
// later because its client was banned.
func (l *Logger) Hold(id, client, from, reason string) {
	l.event("hold", "id", id, "client", client, "from", Addr(from), "reason", reason)
}

// Notice logs a delivery status notification (a bounce, a delay warning)
// queued for orig's sender to; kind is failure, delay or success.
func (l *Logger) Notice(id, orig, kind, to string, nrcpt int) {
	l.event("notice", "id", id, "orig", orig, "kind", kind, "to", Addr(to), "nrcpt", strconv.Itoa(nrcpt))
}

// Pace logs a destination (or "rcpt:" and an address) slowed down for a
// pace or quota verdict: no new session before until, then concurrency
// sessions at most, delay apart.
func (l *Logger) Pace(destination, verdict string, until time.Time, delay time.Duration, concurrency int, reply string) {
	l.event("pace", "destination", destination, "verdict", verdict, "until", until.UTC().Format(time.RFC3339),
		"delay", delay.String(), "concurrency", strconv.Itoa(concurrency), "reply", reply)
}

// Resume logs a paced destination back to its normal limits.
func (l *Logger) Resume(destination string) {
	l.event("pace", "destination", destination, "verdict", "resume")
}

// DestinationAlert logs a destination refusing the relay's own account or
// set-up as the scheduler sees it (its login at the smarthost, TLS, PTR),
// keyed by destination rather than by message; the mail stays queued.
func (l *Logger) DestinationAlert(destination, relay, reply string) {
	l.event("alert", "destination", destination, "relay", relay, "reply", reply)
}

// Ban logs a client banned by the enforcer, when the ban takes effect:
// this is the line fail2ban's filter matches ("ban client=IP
// prefix=NET"). prefix is what is banned, ADDR/LEN: the client's address
// alone (/32, /128) or its network (an IPv6 client's /64). reply is the
// upstream's refusal, on one line as Postfix logs it.
func (l *Logger) Ban(client, prefix, id string, until time.Time, rule, reply string) {
	l.event("ban", "client", client, "prefix", prefix, "id", id, "until", until.UTC().Format(time.RFC3339), "rule", rule, "reply", reply)
}

// Unban logs a ban that ended: reason is "expired" when its end (until)
// came, "lifted" when it was removed before. prefix is the network that is
// free again (ADDR/LEN), client the client banned with it (the network
// itself when the ban names none).
func (l *Logger) Unban(client, prefix string, until time.Time, reason string) {
	l.event("unban", "client", client, "prefix", prefix, "until", until.UTC().Format(time.RFC3339), "reason", reason)
}

// Block logs a sender domain the enforcer refused at MAIL FROM from now on;
// added is false when sender_access listed it already.
func (l *Logger) Block(domain, id, client, rule string, added bool, reply string) {
	l.event("block", "domain", domain, "id", id, "client", client, "rule", rule,
		"added", strconv.FormatBool(added), "reply", reply)
}

// Encapsulate logs a copy of orig queued as id, from the relay itself, with
// the original attached, for a recipient whose server refused it.
func (l *Logger) Encapsulate(id, orig, to, client, rule, reply string) {
	l.event("encapsulate", "id", id, "orig", orig, "to", Addr(to), "client", client, "rule", rule, "reply", reply)
}

// Report logs a refusal the enforcer only reports to the administrator:
// no rule knows it, or its action could not be carried out (why).
func (l *Logger) Report(id, client, from string, to []string, rule, why, reply string) {
	l.event("report", "id", id, "client", client, "from", Addr(from), "to", Addr(strings.Join(to, ",")),
		"rule", rule, "why", why, "reply", reply)
}

// Spare logs a client the enforcer would have banned, or whose domain it
// would have blocked, and spared (a welcomelisted client); its mail goes on
// encapsulated.
func (l *Logger) Spare(id, client, rule, reason string) {
	l.event("spare", "id", id, "client", client, "rule", rule, "reason", reason)
}

// AdminAlert logs that the administrator was told about a refusal that
// blames the relay's own set-up or account (TLS, PTR, the daily sending
// limit, AUTH at the smarthost): at most once per cause (rule) per hour.
// The scheduler's own alert line (DestinationAlert) says what became of
// the mail.
func (l *Logger) AdminAlert(id, client, rule, reply string) {
	l.event("admin-alert", "id", id, "client", client, "rule", rule, "reply", reply)
}

// Companion writes one line of relaykeeper postfix-enforcer's action log,
// which has its own stream and keys (docs/postfix-enforcer.md): event is
// the action (ban, block-domain, encapsulate, report; "would-" in front
// with -t), kv its key/value pairs in the order given.
func (l *Logger) Companion(event string, kv ...string) {
	l.event(event, kv...)
}
