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
// are lower-case words; a value is written bare unless it is empty or holds a
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
)

// Logger writes mail-log lines. The zero value discards them.
type Logger struct {
	mu  sync.Mutex // guards w
	w   io.Writer
	now func() time.Time
}

// New returns a Logger writing to w.
func New(w io.Writer) *Logger {
	return &Logger{w: w, now: time.Now}
}

// NewWithClock returns a Logger whose time comes from now, for tests.
func NewWithClock(w io.Writer, now func() time.Time) *Logger {
	return &Logger{w: w, now: now}
}

// Event writes one line: event, then key/value pairs in the order given.
// kv must have an even length.
func (l *Logger) Event(event string, kv ...string) {
	if l == nil || l.w == nil {
		return
	}
	var b strings.Builder
	b.Grow(128)
	b.WriteString(l.now().UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	b.WriteByte(' ')
	b.WriteString(event)
	for i := 0; i+1 < len(kv); i += 2 {
		b.WriteByte(' ')
		b.WriteString(kv[i])
		b.WriteByte('=')
		b.WriteString(Quote(kv[i+1]))
	}
	b.WriteByte('\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	io.WriteString(l.w, b.String())
}

// Quote returns v as it appears after "key=".
func Quote(v string) string {
	if v == "" {
		return `""`
	}
	for _, c := range v {
		if c <= ' ' || c == '"' || c == '=' || c == 0x7f || c == '\\' {
			return strconv.Quote(v)
		}
	}
	return v
}

// Addr formats an envelope address as the log shows it: in angle brackets,
// "<>" for the null sender.
func Addr(a string) string { return "<" + a + ">" }

// Connect logs a new SMTP connection.
func (l *Logger) Connect(client, listener string) {
	l.Event("connect", "client", client, "listener", listener)
}

// Reject logs a refused connection or command. stage is connect, helo, mail,
// rcpt, data or auth; reply is the full SMTP reply the client heard.
func (l *Logger) Reject(client, stage, reply string, kv ...string) {
	l.Event("reject", append([]string{"client", client, "stage", stage, "reply", reply}, kv...)...)
}

// Accept logs a message written to the spool and acknowledged with 250.
func (l *Logger) Accept(id, client, from string, nrcpt int, size int64, auth string) {
	if auth == "" {
		auth = "-"
	}
	l.Event("accept", "id", id, "client", client, "from", Addr(from),
		"nrcpt", strconv.Itoa(nrcpt), "size", strconv.FormatInt(size, 10), "auth", auth)
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
}

// Deliver logs one recipient's delivery attempt.
func (l *Logger) Deliver(d Delivery) {
	l.Event("delivery", "id", d.ID, "to", Addr(d.To), "relay", d.Relay, "result", string(d.Result),
		"delay", strconv.FormatFloat(d.Delay.Seconds(), 'f', 2, 64), "attempt", strconv.Itoa(d.Attempt),
		"reply", d.Reply, "client", d.Client)
}

// Proxy logs a message relayed during the client's transaction, with the
// upstream's reply the client heard.
func (l *Logger) Proxy(id, client, from string, nrcpt int, size int64, relay string, result Result, reply string) {
	l.Event("proxy", "id", id, "client", client, "from", Addr(from), "nrcpt", strconv.Itoa(nrcpt),
		"size", strconv.FormatInt(size, 10), "relay", relay, "result", string(result), "reply", reply)
}

// Disconnect logs the end of an SMTP connection.
func (l *Logger) Disconnect(client string, messages int) {
	l.Event("disconnect", "client", client, "messages", strconv.Itoa(messages))
}

// Quarantine logs a message moved aside at recovery.
func (l *Logger) Quarantine(id, reason string) {
	l.Event("quarantine", "id", id, "reason", reason)
}
