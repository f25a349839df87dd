// Package postfixlog follows and reads Postfix's mail log, for the
// companion mode ("relaykeeper postfix-enforcer"): it parses the lines that
// say where a message came from and what became of it, follows the file the
// way tail -F does across rotation and restarts, and ties each refused
// delivery back to the client that submitted the message, through a content
// filter's re-injection (amavis) if there is one.
//
// The package knows Postfix's and amavis's log formats and nothing about
// what to do with a refusal; that is internal/enforce's business.
package postfixlog

import (
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Kind says what a mail-log line reports.
type Kind int

// The kinds of line ParseLine understands.
const (
	// Client is smtpd's "QUEUEID: client=NAME[IP]", the first line of a
	// message received over SMTP; after XFORWARD (a content filter
	// re-injecting) it also names the original queue id and client.
	Client Kind = iota + 1
	// MessageID is cleanup's "QUEUEID: message-id=<...>".
	MessageID
	// Queued is qmgr's "QUEUEID: from=<...>, size=N, nrcpt=N (queue active)",
	// logged again on every retry of a deferred message.
	Queued
	// Delivery is a delivery agent's (smtp, lmtp, local, error...)
	// "QUEUEID: to=<...>, relay=..., dsn=..., status=... (...)".
	Delivery
	// Removed is qmgr's "QUEUEID: removed": the message has left the queue.
	Removed
	// Amavis is amavis's summary of a message it checked: "Passed CLEAN
	// {RelayedInbound}, [IP]:PORT [IP] <from> -> <to>, Queue-ID: A, ...,
	// queued_as: B, ...", linking the queue id of the message Postfix handed
	// to it (A) to the one it re-injected (B).
	Amavis
)

var kindNames = [...]string{Client: "client", MessageID: "message-id", Queued: "queued", Delivery: "delivery", Removed: "removed", Amavis: "amavis"}

func (k Kind) String() string {
	if k > 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "kind?"
}

// Event is one parsed mail-log line. Only the fields of its Kind are set.
// Addresses and message ids are given without their angle brackets.
type Event struct {
	Kind Kind
	// Time is the line's timestamp. A traditional syslog timestamp has no
	// year and no zone: Time then has year 0 and is in UTC.
	Time time.Time
	Host string
	// Program is the syslog tag without the PID: "postfix/smtpd",
	// "postfix/submission/smtpd", "postfix-out/smtp", "amavis".
	Program string
	// Service is the last part of Program: "smtpd", "smtp", "amavis".
	Service string
	PID     int
	// QueueID is the Postfix queue id the line is about; for Amavis, the
	// id of the message Postfix handed to amavis.
	QueueID string

	// Client (and Amavis: the original SMTP client as amavis saw it).
	ClientName string
	ClientIP   string
	// Client after XFORWARD: the queue id and client of the message as it
	// first arrived, before the content filter.
	OrigQueueID    string
	OrigClientName string
	OrigClientIP   string

	// MessageID (and Amavis).
	MessageID string

	// Queued (and Amavis: From).
	From  string
	Size  int64
	Nrcpt int

	// Delivery.
	To     string
	OrigTo string
	// Relay is the relay as logged, "gmail-smtp-in.l.google.com[1.2.3.4]:25"
	// or "none"; RelayHost and RelayIP are its parts.
	Relay     string
	RelayHost string
	RelayIP   string
	DSN       string
	// Status is "sent", "deferred", "bounced", "expired" or "undeliverable".
	Status string
	// Detail is the text in parentheses after the status.
	Detail string
	// Reply is the remote server's reply in Detail ("host X[ip] said: REPLY
	// (in reply to ...)", "host X[ip] refused to talk to me: REPLY", or a
	// status=sent detail that is a reply), "" if Detail holds none (a
	// timeout, a lost connection, a local problem).
	Reply string
	// Stage is what Reply answered: "connect", "helo", "mail", "rcpt",
	// "data" (the DATA command), "end-of-data", or another command in lower
	// case; "" if unknown.
	Stage string

	// QueuedAs are the queue ids of the message's re-injected copies: from
	// amavis's "queued_as:", or a status=sent reply's "queued as ID".
	QueuedAs []string
	// OriginIP is amavis's second bracketed address, its guess at the
	// originating client from the Received header fields.
	OriginIP string
	// Result is amavis's verdict, "Passed CLEAN", "Blocked SPAM".
	Result string
}

// ParseLine parses one mail-log line (without its line ending). It accepts
// traditional syslog timestamps ("Nov 22 10:00:00", as Postfix's own
// maillog_file writes them too), RFC 3339 ones ("2026-11-22T10:00:00.123456
// +00:00", rsyslog's high-precision format) and an optional "<PRI>" prefix.
// It returns false for any line it does not understand.
func ParseLine(line string) (Event, bool) {
	var e Event
	rest, ok := e.parseHeader(strings.TrimRight(line, "\r\n"))
	if !ok {
		return Event{}, false
	}
	if isAmavis(e.Service) {
		ok = e.parseAmavis(rest)
	} else if strings.HasPrefix(e.Program, "postfix") {
		ok = e.parsePostfix(rest)
	} else {
		ok = false
	}
	if !ok {
		return Event{}, false
	}
	return e, true
}

func isAmavis(service string) bool {
	return service == "amavis" || service == "amavisd" || service == "amavisd-new"
}

// parseHeader reads "[<PRI>]TIME HOST PROGRAM[PID]: " and returns the rest.
func (e *Event) parseHeader(s string) (string, bool) {
	if strings.HasPrefix(s, "<") {
		i := strings.IndexByte(s, '>')
		if i < 0 || i > 4 {
			return "", false
		}
		s = s[i+1:]
	}
	var ok bool
	if s, ok = e.parseTime(s); !ok {
		return "", false
	}
	e.Host, s, ok = strings.Cut(s, " ")
	if !ok || e.Host == "" {
		return "", false
	}
	tag, msg, ok := strings.Cut(s, ": ")
	if !ok || tag == "" || strings.ContainsAny(tag, " \t") {
		return "", false
	}
	if i := strings.IndexByte(tag, '['); i >= 0 {
		if !strings.HasSuffix(tag, "]") {
			return "", false
		}
		pid, err := strconv.Atoi(tag[i+1 : len(tag)-1])
		if err != nil || pid < 0 {
			return "", false
		}
		e.PID, tag = pid, tag[:i]
	}
	if tag == "" {
		return "", false
	}
	e.Program = tag
	e.Service = tag[strings.LastIndexByte(tag, '/')+1:]
	return msg, true
}

// parseTime reads a timestamp and the space after it.
func (e *Event) parseTime(s string) (string, bool) {
	if len(s) >= 10 && s[4] == '-' && isDigits(s[:4]) {
		ts, rest, ok := strings.Cut(s, " ")
		if !ok {
			return "", false
		}
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			// rsyslog without a zone, or with "+0100".
			for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04:05.999999999-0700"} {
				if t, err = time.Parse(layout, ts); err == nil {
					break
				}
			}
			if err != nil {
				return "", false
			}
		}
		e.Time = t
		return rest, true
	}
	// "Nov 22 10:00:00", "Nov  2 10:00:00", "Nov 22 10:00:00.123456".
	if len(s) < 16 || s[3] != ' ' {
		return "", false
	}
	mon, rest := s[:3], strings.TrimLeft(s[4:], " ")
	day, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return "", false
	}
	clock, rest, ok := strings.Cut(rest, " ")
	if !ok {
		return "", false
	}
	t, err := time.Parse("Jan 2 15:04:05.999999999", mon+" "+day+" "+clock)
	if err != nil {
		return "", false
	}
	e.Time = t
	return rest, true
}

// parsePostfix reads the message of a Postfix daemon's line.
func (e *Event) parsePostfix(msg string) bool {
	id, rest, ok := strings.Cut(msg, ": ")
	if !ok || !isQueueID(id) {
		return false
	}
	e.QueueID = id
	switch {
	case strings.HasPrefix(rest, "client="):
		return e.parseClient(rest)
	case strings.HasPrefix(rest, "message-id="):
		e.Kind = MessageID
		e.MessageID = unbracket(strings.TrimPrefix(rest, "message-id="))
		return true
	case strings.HasPrefix(rest, "from=<"):
		return e.parseQueued(rest)
	case strings.HasPrefix(rest, "to=<"):
		return e.parseDelivery(rest)
	case rest == "removed":
		e.Kind = Removed
		return true
	}
	return false
}

// isQueueID accepts Postfix's short (hexadecimal) and long (base 52 with a
// 'z') queue ids, and rejects words such as "NOQUEUE" and "warning": an id
// has a digit.
func isQueueID(s string) bool {
	if len(s) < 5 || len(s) > 32 {
		return false
	}
	digit := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			digit = true
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		default:
			return false
		}
	}
	return digit
}

// parseClient reads "client=NAME[IP], sasl_method=..., orig_queue_id=ID,
// orig_client=NAME[IP]".
func (e *Event) parseClient(s string) bool {
	e.Kind = Client
	for i, f := range strings.Split(s, ", ") {
		k, v, _ := strings.Cut(f, "=")
		switch {
		case i == 0:
			var ok bool
			if e.ClientName, e.ClientIP, ok = nameAddr(v); !ok {
				return false
			}
		case k == "orig_queue_id" && isQueueID(v):
			e.OrigQueueID = v
		case k == "orig_client":
			e.OrigClientName, e.OrigClientIP, _ = nameAddr(v)
		}
	}
	return true
}

// parseQueued reads "from=<ADDR>, size=N, nrcpt=N (queue active)".
func (e *Event) parseQueued(s string) bool {
	e.Kind = Queued
	from, rest, ok := angle(strings.TrimPrefix(s, "from="))
	if !ok {
		return false
	}
	e.From = from
	for _, f := range strings.Split(strings.TrimPrefix(rest, ", "), ", ") {
		k, v, _ := strings.Cut(f, "=")
		v, _, _ = strings.Cut(v, " ")
		switch k {
		case "size":
			e.Size, _ = strconv.ParseInt(v, 10, 64)
		case "nrcpt":
			e.Nrcpt, _ = strconv.Atoi(v)
		}
	}
	return true
}

// parseDelivery reads "to=<ADDR>, orig_to=<ADDR>, relay=HOST[IP]:PORT,
// delay=..., delays=..., dsn=X.Y.Z, status=WORD (DETAIL)".
func (e *Event) parseDelivery(s string) bool {
	e.Kind = Delivery
	to, rest, ok := angle(strings.TrimPrefix(s, "to="))
	if !ok {
		return false
	}
	e.To = to
	head, status, ok := strings.Cut(rest, "status=")
	if !ok {
		return false
	}
	for _, f := range strings.Split(head, ", ") {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "orig_to":
			e.OrigTo = unbracket(v)
		case "relay":
			e.Relay = v
			e.RelayHost, e.RelayIP, _ = nameAddr(v)
		case "dsn":
			e.DSN = v
		}
	}
	e.Status, e.Detail, _ = strings.Cut(status, " ")
	if e.Status == "" {
		return false
	}
	if strings.HasPrefix(e.Detail, "(") && strings.HasSuffix(e.Detail, ")") {
		e.Detail = e.Detail[1 : len(e.Detail)-1]
	}
	e.parseDetail()
	return true
}

// parseDetail finds the remote reply in a delivery's detail.
func (e *Event) parseDetail() {
	d := e.Detail
	if h, ok := strings.CutPrefix(d, "host "); ok {
		if _, reply, ok := strings.Cut(h, " said: "); ok {
			e.Reply, e.Stage = inReplyTo(reply)
		} else if _, reply, ok := strings.Cut(h, " refused to talk to me: "); ok {
			e.Reply, e.Stage = reply, "connect"
		}
	} else if e.Status == "sent" && len(d) > 3 && isDigits(d[:3]) && (d[3] == ' ' || d[3] == '-') {
		e.Reply = d
	}
	// "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as X"
	if e.Status == "sent" {
		if i := strings.LastIndex(d, "queued as "); i >= 0 {
			id := d[i+len("queued as "):]
			id, _, _ = strings.Cut(id, " ")
			id = strings.TrimRight(id, ",;)")
			if isQueueID(id) {
				e.QueuedAs = []string{id}
			}
		}
	}
}

// inReplyTo splits "REPLY (in reply to end of DATA command)".
func inReplyTo(s string) (reply, stage string) {
	i := strings.LastIndex(s, " (in reply to ")
	if i < 0 || !strings.HasSuffix(s, ")") {
		return s, ""
	}
	cmd := s[i+len(" (in reply to ") : len(s)-1]
	switch cmd {
	case "end of DATA command":
		stage = "end-of-data"
	case "DATA command":
		stage = "data"
	case "RCPT TO command":
		stage = "rcpt"
	case "MAIL FROM command":
		stage = "mail"
	case "HELO command", "EHLO command":
		stage = "helo"
	case "initial protocol greeting":
		stage = "connect"
	default:
		stage = strings.ToLower(strings.TrimSuffix(cmd, " command"))
	}
	return s[:i], stage
}

// parseAmavis reads amavis's summary line:
//
//	(12345-01) Passed CLEAN {RelayedInbound}, [1.2.3.4]:5678 [1.2.3.4]
//	<from> -> <to>,<to2>, Queue-ID: ABC, Message-ID: <id>, mail_id: x,
//	Hits: -1.2, size: 1234, queued_as: DEF, 1234 ms
func (e *Event) parseAmavis(msg string) bool {
	if strings.HasPrefix(msg, "(") {
		_, msg, _ = strings.Cut(msg, ") ")
	}
	qid := field(msg, "Queue-ID: ")
	if !isQueueID(qid) {
		return false
	}
	e.Kind = Amavis
	e.QueueID = qid
	// The verdict runs up to the first ", " or " {".
	if i := strings.IndexAny(msg, ",{"); i > 0 {
		e.Result = strings.TrimSpace(msg[:i])
	}
	// The addresses come after the verdict's "}, " (or ", " without it) and
	// before the "<from> -> <to>" part.
	addrs := msg
	if i := strings.Index(addrs, "}, "); i >= 0 {
		addrs = addrs[i+3:]
	} else if i := strings.Index(addrs, ", "); i >= 0 {
		addrs = addrs[i+2:]
	}
	if i := strings.Index(addrs, " -> "); i >= 0 {
		if j := strings.LastIndexByte(addrs[:i], '<'); j >= 0 {
			e.From = unbracket(addrs[j:i])
			addrs = addrs[:j]
		}
	}
	var ips []string
	for addrs != "" && len(ips) < 2 {
		open := strings.IndexByte(addrs, '[')
		if open < 0 {
			break
		}
		end := strings.IndexByte(addrs[open:], ']')
		if end < 0 {
			break
		}
		if ip, ok := parseIP(addrs[open+1 : open+end]); ok {
			ips = append(ips, ip)
		}
		addrs = addrs[open+end+1:]
	}
	if len(ips) > 0 {
		e.ClientIP = ips[0]
	}
	if len(ips) > 1 {
		e.OriginIP = ips[1]
	}
	e.MessageID = unbracket(field(msg, "Message-ID: "))
	for _, id := range strings.Split(field(msg, "queued_as: "), "/") {
		if isQueueID(id) {
			e.QueuedAs = append(e.QueuedAs, id)
		}
	}
	return true
}

// field returns the value after key in amavis's ", Key: value, " list.
func field(s, key string) string {
	i := strings.Index(s, key)
	if i < 0 {
		return ""
	}
	v := s[i+len(key):]
	if j := strings.Index(v, ", "); j >= 0 {
		v = v[:j]
	}
	return strings.TrimSpace(v)
}

// nameAddr splits "name[1.2.3.4]" or "name[1.2.3.4]:25". The address may
// be "unknown" or, for IPv6, carry an "IPv6:" prefix.
func nameAddr(s string) (name, ip string, ok bool) {
	open := strings.IndexByte(s, '[')
	end := strings.LastIndexByte(s, ']')
	if open < 0 || end < open {
		return s, "", s != ""
	}
	name = s[:open]
	ip = s[open+1 : end]
	if a, ok := parseIP(ip); ok {
		ip = a
	}
	return name, ip, true
}

// parseIP accepts "1.2.3.4", "2001:db8::1" and "IPv6:2001:db8::1".
func parseIP(s string) (string, bool) {
	a, err := netip.ParseAddr(strings.TrimPrefix(s, "IPv6:"))
	if err != nil {
		return "", false
	}
	return a.Unmap().String(), true
}

// angle reads "<addr>" at the start of s and returns the address and what
// follows it.
func angle(s string) (addr, rest string, ok bool) {
	if !strings.HasPrefix(s, "<") {
		return "", "", false
	}
	i := strings.IndexByte(s, '>')
	if i < 0 {
		return "", "", false
	}
	return s[1:i], s[i+1:], true
}

func unbracket(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= 2 && s[0] == '<' && s[len(s)-1] == '>' {
		return s[1 : len(s)-1]
	}
	return s
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
