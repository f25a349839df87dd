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
	"regexp"
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
	// Pickup is pickup's "QUEUEID: uid=N from=<...>", the first line of a
	// message submitted on this machine (sendmail, postdrop): a message
	// without a client. Or, with " orig_id=ID" (OrigQueueID), of a
	// message that postsuper -r requeued: the message ID was, with its
	// client.
	Pickup
	// Notice is bounce(8)'s "ORIG: sender non-delivery notification: ID"
	// (and its delay, delivery status and postmaster notices): Postfix
	// made the message ID itself, without a client. QueueID is ID.
	Notice
	// Requeued is postsuper's "QUEUEID: requeued" (postsuper -r): pickup's
	// line with orig_id=QUEUEID follows. Only this line, whose text no
	// client writes, makes an orig_id= a requeued message's.
	Requeued
	// Disconnect is smtpd's "disconnect from NAME[IP] ...", a session's
	// last line: its last transaction, if qmgr never logged it, was
	// given up. It has no QueueID.
	Disconnect
)

var kindNames = [...]string{Client: "client", MessageID: "message-id", Queued: "queued", Delivery: "delivery", Removed: "removed", Amavis: "amavis", Pickup: "pickup", Notice: "notice", Requeued: "requeued", Disconnect: "disconnect"}

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
	// ForwardedAs is the queue id of the copy that local(8) re-submitted
	// when it forwarded the message (an alias or .forward to another
	// address): its delivery's "status=sent (forwarded as ID)".
	ForwardedAs string
	// QueuedAsChoices are the queued_as fields of an amavis line that has
	// more than one (the sender's Message-ID or Subject holds one): each
	// may be amavis's, and QueuedAs is then empty. The Tracker takes one
	// only if it alone names messages that may be re-injected copies.
	QueuedAsChoices [][]string
	// OriginIP is amavis's second bracketed address, its guess at the
	// originating client from the Received header fields.
	OriginIP string
	// Result is amavis's verdict, "Passed CLEAN", "Blocked SPAM".
	Result string
	// Cut is the length of the text of a delivery line cut before its
	// status (ParseCut), or of qmgr's Queued line cut before its size
	// (whose From is not read); 0 for any other line.
	Cut int
	// UID is pickup's uid=: the user who submitted the message.
	UID string
	// PipeService is the master.cf service of a pipe(8) delivery that
	// succeeded ("status=sent (delivered via filter service)"): a
	// command took the message, and may have re-injected it (Postfix's
	// simple content filter) as a local submission that no line links.
	PipeService string
}

// ParseLine parses one mail-log line (without its line ending). It accepts
// traditional syslog timestamps ("Nov 22 10:00:00", as Postfix's own
// maillog_file writes them too), RFC 3339 ones ("2026-11-22T10:00:00.123456
// +00:00", rsyslog's high-precision format) and an optional "<PRI>" prefix,
// and RFC 5424's lines ("<PRI>1 TIME HOST APP PID MSGID SD MSG").
// It returns false for any line it does not understand.
func ParseLine(line string) (Event, bool) {
	var e Event
	rest, ok := e.parseHeader(strings.TrimRight(afterZeros(line), "\r\n"))
	if !ok {
		return Event{}, false
	}
	if isAmavis(e.Service) {
		ok = e.parseAmavis(rest)
	} else if isPostfix(e.Program, e.Service) {
		ok = e.parsePostfix(rest)
	} else {
		ok = false
	}
	if !ok {
		return Event{}, false
	}
	return e, true
}

// MaxLogText is the longest text Postfix logs in one line: msg_syslog.c
// and msg_logger.c (maillog_file) cut a message at 2000 bytes.
const MaxLogText = 2000

// ParseCut reads a delivery line that Postfix cut at MaxLogText bytes,
// whose status and reply are lost: a client that chooses a long address
// (logged as orig_to= where a catch-all alias takes it) pushes them out of
// its line. The Event is a Delivery with QueueID, To if it is whole, and
// Cut, the length of the line's text. ParseLine does not read a delivery
// line of MaxLogText bytes or more, even one that ends in ")": it may
// have been cut anywhere. A shorter delivery line that ParseLine does
// not read was cut too, by a syslog daemon that takes shorter messages
// (1024 bytes, RFC 3164's size), even one that ends in ")" (inside a
// quoted recipient's): Cut is then less than MaxLogText.
func ParseCut(line string) (Event, bool) {
	var e Event
	rest, ok := e.parseHeader(strings.TrimRight(afterZeros(line), "\r\n"))
	if !ok || !isPostfix(e.Program, e.Service) {
		return Event{}, false
	}
	// A whole line ends in ")"; so does one cut inside a recipient's
	// quoted ")))": a shorter line is whole if ParseLine reads it.
	if _, whole := ParseLine(line); whole {
		return Event{}, false
	}
	text := len(rest)
	id, rest, ok := strings.Cut(rest, ": ")
	if !ok || !isQueueID(id) || !strings.HasPrefix(rest, "to=<") {
		return Event{}, false
	}
	e.Kind, e.QueueID, e.Cut = Delivery, id, text
	e.To, _, _ = readPath(rest[len("to="):])
	return e, true
}

// isPostfix reports whether a syslog tag is a Postfix daemon's: Postfix
// tags its lines SYSLOG_NAME/PROCESS, and syslog_name may be anything
// ("-o syslog_name=relay-zombig-name" on master.cf's smtp transports, as
// in shared/seeds): a tag starting with "postfix", or one with a "/"
// ending in the name of a daemon whose lines are read, after a name of
// letters, digits, ".", "_", "-" and "/" that is not another program's
// (Cyrus IMAP logs its LMTP server as cyrus/lmtp). (Anyone may log under
// any tag: the log is trusted as a whole, see docs/postfix-enforcer.md.)
func isPostfix(program, service string) bool {
	if strings.HasPrefix(program, "postfix") {
		return true
	}
	name, ok := strings.CutSuffix(program, "/"+service)
	return ok && postfixDaemons[service] && isSyslogName(name) && !otherPrograms[name]
}

// otherPrograms are syslog names of programs, not Postfix's, that tag
// their lines NAME/PROCESS with a PROCESS in postfixDaemons.
var otherPrograms = map[string]bool{"cyrus": true}

// isSyslogName reports whether s can be a syslog_name: a non-empty run
// of letters, digits, ".", "_", "-" and "/", with no empty part.
func isSyslogName(s string) bool {
	for _, part := range strings.Split(s, "/") {
		if part == "" || strings.Trim(part, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
			return false
		}
	}
	return true
}

// postfixDaemons are the processes whose lines ParseLine reads.
var postfixDaemons = map[string]bool{
	"smtpd": true, "cleanup": true, "qmgr": true, "pickup": true, "postsuper": true, "bounce": true,
	"smtp": true, "lmtp": true, "local": true, "virtual": true, "pipe": true, "error": true, "retry": true, "discard": true,
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
		if v5424, ok := strings.CutPrefix(s, "1 "); ok {
			return e.parse5424(v5424)
		}
	}
	var ok bool
	if s, ok = e.parseTime(s); !ok {
		return "", false
	}
	e.Host, s, ok = strings.Cut(s, " ")
	if !ok || e.Host == "" {
		return "", false
	}
	tag, msg, ok := strings.Cut(skipFacPrio(s), ": ") // BusyBox's "mail.info " skipped
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

// parse5424 reads the rest of an RFC 5424 header, after "<PRI>1 ":
// "TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG", as rsyslog's
// RSYSLOG_SyslogProtocol23Format and syslog-ng write Postfix's lines.
// The structured data is the syslog daemon's, skipped element by element
// with its escapes, so that a "]" inside a value ends nothing; MSG is
// Postfix's text, with the BOM RFC 5424 allows before it.
func (e *Event) parse5424(s string) (string, bool) {
	f := make([]string, 5)
	for i := range f {
		var ok bool
		if f[i], s, ok = strings.Cut(s, " "); !ok || f[i] == "" {
			return "", false
		}
	}
	t, err := time.Parse(time.RFC3339Nano, f[0])
	if err != nil || f[1] == "-" || f[2] == "-" {
		return "", false
	}
	e.Time, e.Host, e.Program = t, f[1], f[2]
	e.Service = f[2][strings.LastIndexByte(f[2], '/')+1:]
	if f[3] != "-" {
		if e.PID, err = strconv.Atoi(f[3]); err != nil || e.PID < 0 {
			return "", false
		}
	}
	if rest, ok := strings.CutPrefix(s, "- "); ok {
		s = rest
	} else {
		for strings.HasPrefix(s, "[") {
			i, esc := 1, false
			for ; i < len(s) && (esc || s[i] != ']'); i++ {
				esc = !esc && s[i] == '\\'
			}
			if i == len(s) {
				return "", false
			}
			s = s[i+1:]
		}
		var ok bool
		if s, ok = strings.CutPrefix(s, " "); !ok {
			return "", false
		}
	}
	return strings.TrimPrefix(s, "\ufeff"), true
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
	if e.Service == "smtpd" && strings.HasPrefix(msg, "disconnect from ") {
		e.Kind = Disconnect
		return true
	}
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
		if e.parseQueued(rest) {
			return true
		}
		if e.Service == "qmgr" && len(msg) >= MaxLogText {
			// Cut by a long sender: the message is queued, its
			// sender unread (Cut).
			e.Kind, e.From, e.Cut = Queued, "", len(msg)
			return true
		}
		return false
	case strings.HasPrefix(rest, "uid=") && e.Service == "pickup":
		return e.parsePickup(rest)
	case strings.HasPrefix(rest, "to=<"):
		// A line of MaxLogText bytes may be cut: one that still ends
		// in ")", where the client's long address put the cut right
		// after a parenthesis in the reply, would give a reply cut
		// short. ParseCut reads it.
		return len(msg) < MaxLogText && e.parseDelivery(rest)
	case rest == "removed":
		e.Kind = Removed
		return true
	case rest == "requeued" && e.Service == "postsuper":
		e.Kind = Requeued
		return true
	case e.Service == "bounce":
		return e.parseNotice(rest)
	}
	return false
}

// noticeLine is bounce(8)'s line about a notice it made
// (bounce_notify_service.c and its kin): "sender non-delivery
// notification: ID".
var noticeLine = regexp.MustCompile(`^(?:sender|postmaster) (?:non-delivery|delay|delivery status|success) notification: ([0-9A-Za-z]+)$`)

// parseNotice reads bounce(8)'s line about the notice ID it made about
// the line's message: the event is about ID.
func (e *Event) parseNotice(s string) bool {
	m := noticeLine.FindStringSubmatch(s)
	if m == nil || !isQueueID(m[1]) {
		return false
	}
	e.Kind, e.QueueID = Notice, m[1]
	return true
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

// parseClient reads smtpd's "client=NAME[IP]", followed in Postfix's order
// by ", sasl_method=M, sasl_username=U, sasl_sender=S" and then
// ", orig_queue_id=ID, orig_client=NAME[IP]" (smtpd_sasl_proto.c).
//
// The client is the first field only, up to the first ", ": a name that
// Postfix verified and an address. sasl_sender is the AUTH= parameter of
// MAIL FROM, text that any client chooses
// (`AUTH=<x, orig_client=victim[198.51.100.7]>`), so the SASL fields and
// everything after them are opaque: the XFORWARD fields are read only from
// a line without them.
func (e *Event) parseClient(s string) bool {
	e.Kind = Client
	first, rest, _ := strings.Cut(strings.TrimPrefix(s, "client="), ", ")
	var ok bool
	if e.ClientName, e.ClientIP, ok = clientAddr(first); !ok {
		return false
	}
	if rest == "" || strings.HasPrefix(rest, "sasl_") {
		return true
	}
	// ", orig_queue_id=ID, orig_client=NAME[IP]", either or both.
	if v, ok := strings.CutPrefix(rest, "orig_queue_id="); ok {
		id, after, _ := strings.Cut(v, ", ")
		if !isQueueID(id) {
			return false
		}
		e.OrigQueueID, rest = id, after
	}
	if v, ok := strings.CutPrefix(rest, "orig_client="); ok {
		name, ip, ok := clientAddr(v)
		if !ok {
			return false
		}
		e.OrigClientName, e.OrigClientIP, rest = name, ip, ""
	}
	return rest == ""
}

// parsePickup reads pickup's "uid=N from=<ADDR>" (pickup.c), which may be
// followed by " orig_id=ID" for a message that postsuper -r requeued: ID
// (OrigQueueID) is the message's queue id before, and its client is the
// message's.
func (e *Event) parsePickup(s string) bool {
	uid, rest, ok := strings.Cut(strings.TrimPrefix(s, "uid="), " from=")
	if !ok || !isDigits(uid) {
		return false
	}
	from, rest, ok := readPath(rest)
	if !ok {
		return false
	}
	if id, ok := strings.CutPrefix(rest, " orig_id="); ok && isQueueID(id) {
		e.OrigQueueID, rest = id, ""
	}
	if rest != "" {
		return false
	}
	e.Kind, e.From, e.UID = Pickup, from, uid
	return true
}

// parseQueued reads qmgr's "from=<ADDR>, size=N, nrcpt=N (queue active)",
// and its line about an expired message ("from=<ADDR>, status=expired,
// returned to sender") for the address only.
//
// What follows the address must be one of those whole: Postfix's internal
// form (info_log_address_format = internal, or Postfix before 3.5) logs
// the sender `"x@victim.example>, size=1"@attacker.example` unquoted,
// `from=<x@victim.example>, size=1@attacker.example>, size=N, ...`, and
// the path read from it is the client's text, not its sender.
func (e *Event) parseQueued(s string) bool {
	e.Kind = Queued
	from, rest, ok := readPath(strings.TrimPrefix(s, "from="))
	if !ok {
		return false
	}
	e.From = from
	if rest == ", status=expired, returned to sender" {
		return true
	}
	m := queuedTail.FindStringSubmatch(rest)
	if m == nil {
		return false
	}
	e.Size, _ = strconv.ParseInt(m[1], 10, 64)
	e.Nrcpt, _ = strconv.Atoi(m[2])
	return true
}

// queuedTail is what follows the sender in qmgr's line (qmgr_message.c).
var queuedTail = regexp.MustCompile(`^, size=(\d+), nrcpt=(\d+) \(queue [a-z]+\)$`)

// parseDelivery reads a delivery agent's line by Postfix's own field order
// (log_adhoc.c):
//
//	to=<ADDR>[, orig_to=<ADDR>], relay=R[, conn_use=N], delay=D,
//	delays=A/B/C/D, dsn=X.Y.Z, status=WORD (DETAIL)
//
// The addresses are read as RFC 5321 paths, status is the field after
// dsn=, and DETAIL is everything in the parentheses up to the end of the
// line. A line that does not follow this order is not read.
func (e *Event) parseDelivery(s string) bool {
	e.Kind = Delivery
	to, rest, ok := readPath(strings.TrimPrefix(s, "to="))
	if !ok {
		return false
	}
	e.To = to
	if v, ok := strings.CutPrefix(rest, ", orig_to="); ok {
		if e.OrigTo, rest, ok = readPath(v); !ok {
			return false
		}
	}
	// One relay= field after the addresses, or the line is two lines'
	// worth of fields: an address logged unquoted (Postfix's internal
	// form) that carries a delivery's fields of its own. Counted after
	// orig_to: a quoted original recipient may hold ", relay=", and
	// counting it made a spammer's refusal unreadable.
	if strings.Count(rest, ", relay=") != 1 {
		return false
	}
	if e.Relay, rest, ok = cutField(rest, "relay"); !ok {
		return false
	}
	e.RelayHost, e.RelayIP, _ = nameAddr(e.Relay)
	if strings.HasPrefix(rest, ", conn_use=") {
		if _, rest, ok = cutField(rest, "conn_use"); !ok {
			return false
		}
	}
	for _, key := range []string{"delay", "delays", "dsn"} {
		var v string
		if v, rest, ok = cutField(rest, key); !ok {
			return false
		}
		e.DSN = v
	}
	v, ok := strings.CutPrefix(rest, ", status=")
	if !ok {
		return false
	}
	status, detail, ok := strings.Cut(v, " ")
	if !ok || !isWord(status) || !strings.HasPrefix(detail, "(") || !strings.HasSuffix(detail, ")") {
		return false
	}
	e.Status, e.Detail = status, detail[1:len(detail)-1]
	return e.parseDetail()
}

// cutField cuts ", key=VALUE" from the start of s; VALUE, a word without
// spaces or parentheses, runs to the next ", ".
func cutField(s, key string) (val, rest string, ok bool) {
	v, ok := strings.CutPrefix(s, ", "+key+"=")
	if !ok {
		return "", "", false
	}
	if i := strings.Index(v, ", "); i >= 0 {
		val, rest = v[:i], v[i:]
	} else {
		val = v
	}
	if val == "" || strings.ContainsAny(val, " ()") {
		return "", "", false
	}
	return val, rest, true
}

// isWord reports whether s is a non-empty run of lower-case letters.
func isWord(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return s != ""
}

// parseDetail finds the remote reply in a delivery's detail. For a refusal
// it is the text after "host NAME[IP] said: " (or "refused to talk to me:
// "), and only when NAME[IP] is the server of the line's relay= field: the
// detail of a local problem may quote text that a client chose.
// False for a reply without smtp(8)'s "(in reply to COMMAND)": cut by a
// syslog daemon after a ")", stageless (see TestGM25CutAfterParenthesis).
func (e *Event) parseDetail() bool {
	d := e.Detail
	if e.Status == "sent" {
		// "250 2.0.0 Ok: queued as X", or a content filter's
		// "250 2.0.0 from MTA(smtp:[127.0.0.1]:10025): 250 2.0.0 Ok: queued as X".
		if len(d) > 3 && isDigits(d[:3]) && (d[3] == ' ' || d[3] == '-') {
			e.Reply = d
		}
		// The id ends the reply: a server that echoes the recipient
		// ("250 2.0.0 <RCPT> ID Saved", Dovecot's LMTP) says "queued as
		// ID" only if the recipient's quoted local part does.
		// local(8)'s own words, never a server's reply (which starts
		// with its code).
		if id, ok := strings.CutPrefix(d, "forwarded as "); ok && e.RelayIP == "" && isQueueID(id) {
			e.ForwardedAs = id
		}
		// pipe(8)'s own words (pipe.c), with relay= its transport.
		if v, ok := strings.CutPrefix(d, "delivered via "); ok && e.RelayIP == "" {
			if svc, _, ok := strings.Cut(v, " service"); ok && svc != "" && !strings.ContainsAny(svc, " ()") {
				e.PipeService = svc
			}
		}
		if i := strings.LastIndex(d, "queued as "); i >= 0 {
			id := strings.TrimRight(d[i+len("queued as "):], " ,;).")
			if isQueueID(id) {
				e.QueuedAs = []string{id}
			}
		}
		return true
	}
	h, ok := strings.CutPrefix(d, "host ")
	// The relay's own login refused (smtp_sasl_glue.c): "SASL
	// authentication failed; server NAME[IP] said: REPLY".
	sasl := false
	if !ok {
		if h, sasl = strings.CutPrefix(d, "SASL authentication failed; server "); !sasl {
			return true
		}
	}
	end := strings.IndexByte(h, ']')
	if end < 0 {
		return true
	}
	name, ip, _ := nameAddr(h[:end+1])
	if !strings.EqualFold(name, e.RelayHost) || ip != e.RelayIP || e.RelayIP == "" {
		return true
	}
	if reply, ok := strings.CutPrefix(h[end+1:], " said: "); ok && sasl {
		e.Reply, e.Stage = reply, "auth"
	} else if ok {
		e.Reply, e.Stage = inReplyTo(reply)
		return e.Stage != "" // else cut: ParseCut's
	} else if reply, ok := strings.CutPrefix(h[end+1:], " refused to talk to me: "); ok && !sasl {
		e.Reply, e.Stage = reply, "connect"
	}
	return true
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
