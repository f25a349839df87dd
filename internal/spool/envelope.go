package spool

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/relaykeeper/relaykeeper/internal/xtext"
)

// RcptStatus is where one recipient stands.
type RcptStatus string

// Recipient states. Deferred is Pending with a temporary failure recorded.
const (
	Pending  RcptStatus = "pending"
	Deferred RcptStatus = "deferred"
	Sent     RcptStatus = "sent"
	Bounced  RcptStatus = "failed"
)

// Recipient is one envelope recipient and its own delivery status.
type Recipient struct {
	Addr   string
	Status RcptStatus
	// Reply is the last upstream reply for this recipient, on one line.
	Reply string
	// Notify and ORCPT are the client's DSN parameters (RFC 3461):
	// "SUCCESS,FAILURE,DELAY" or "NEVER", and "rfc822;user@example.com".
	Notify string `json:"notify,omitempty"`
	ORCPT  string `json:"orcpt,omitempty"`
	// InReplyTo is the command an upstream's Reply answered, in
	// Postfix's words: "MAIL FROM", "RCPT TO", "DATA" or "end of DATA";
	// empty when Reply is the relay's own account. Notices say it, as
	// Postfix's "(in reply to RCPT TO command)".
	InReplyTo string `json:"in_reply_to,omitempty"`
	// RemoteMTA is the upstream that sent Reply, as the mail log's
	// relay= names it without a port ("mx.example.net[192.0.2.25]" or
	// "192.0.2.25"); empty when Reply is the relay's own account.
	RemoteMTA string `json:"remote_mta,omitempty"`
}

// Done reports whether nothing more is to be done for the recipient.
func (r Recipient) Done() bool { return r.Status == Sent || r.Status == Bounced }

// Envelope is everything known about a message except its content.
type Envelope struct {
	ID string `json:"id"`
	// From is the envelope sender without angle brackets; empty for <>.
	From       string      `json:"from"`
	Recipients []Recipient `json:"recipients"`
	// BodyType is E-MailRelay's Content field: 7bit, 8bit, binarymime or
	// unknown.
	BodyType string `json:"body_type,omitempty"`
	SMTPUTF8 bool   `json:"smtputf8,omitempty"`
	// Client is the submitting client's ip:port.
	Client string `json:"client"`
	// Helo is the name the client gave in HELO or EHLO.
	Helo string `json:"helo,omitempty"`
	// ClientName is the client's forward-confirmed host name, "" if it
	// had none or names were not looked up.
	ClientName string `json:"client_name,omitempty"`
	// AuthID is the SASL identity the client authenticated as, if any.
	AuthID string `json:"auth_id,omitempty"`
	// E-MailRelay fields kept as they are, for filters that use them.
	MailFromAuthIn        string `json:"-"`
	MailFromAuthOut       string `json:"-"`
	ForwardTo             string `json:"forward_to,omitempty"`
	ForwardToAddress      string `json:"forward_to_address,omitempty"`
	ClientAccountSelector string `json:"-"`
	// Local are E-MailRelay's To-Local lines: mailbox names its address
	// verifier gave recipients it called local, for its local delivery
	// (deliver:, POP). Kept as they are and never forwarded.
	Local []string `json:"local,omitempty"`

	Arrival     time.Time `json:"arrival"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	// LastReply is the last thing that went wrong for the message as a
	// whole (a refused connection, a reply to MAIL or DATA).
	LastReply string `json:"last_reply,omitempty"`

	// EnvID and Ret are the client's DSN parameters from MAIL (RFC 3461).
	EnvID string `json:"envid,omitempty"`
	Ret   string `json:"ret,omitempty"`
	// Warned is when a delay warning was sent, so it is sent once.
	Warned time.Time `json:"warned,omitzero"`
	// Requeued is when an administrator sent a failed message again
	// (queue retry): its queue lifetime counts from then, as a message
	// given back to the queue is not expired again by its first deferral.
	Requeued time.Time `json:"requeued,omitzero"`
	// Bounce marks a message relaykeeper made itself (a DSN, a warning),
	// which must never cause another.
	Bounce bool `json:"bounce,omitempty"`
	// FilterTo is a FILTER action's destination ("smtp:[127.0.0.1]:10025")
	// from an access table or header check: this message's content filter.
	FilterTo string `json:"filter_to,omitempty"`
	// Filtered marks a message that came back from the after-queue
	// content filter (the reinject listener): it is never sent to the
	// filter again.
	Filtered bool `json:"filtered,omitempty"`
	// Enforced records the refusals the enforcer has acted on ("ACTION
	// RCPT DIGEST"), so that a deferral seen again on a retry is not acted
	// on twice, across restarts too.
	Enforced []string `json:"enforced,omitempty"`

	// Reasons are E-MailRelay's failure trailer lines (Reason/ReasonCode
	// pairs), kept and appended to, since its resubmit script counts them.
	Reasons []string `json:"-"`
	// Extra holds trailer lines this version does not know, kept verbatim.
	Extra []string `json:"-"`
}

// Pending returns the recipients that still need a delivery attempt.
func (e *Envelope) Pending() []string {
	var out []string
	for _, r := range e.Recipients {
		if !r.Done() {
			out = append(out, r.Addr)
		}
	}
	return out
}

// Count returns how many recipients are in each status.
func (e *Envelope) Count(st RcptStatus) int {
	n := 0
	for _, r := range e.Recipients {
		if r.Status == st {
			n++
		}
	}
	return n
}

const (
	fieldPrefix = "X-MailRelay-"
	ownPrefix   = "X-Relaykeeper-"
	formatID    = "#2821.8"
)

// oneLine makes s safe to write as a field value.
func oneLine(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		s = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(s)
	}
	return s
}

// maxKeptReply bounds what an envelope keeps of a reply, as Postfix keeps
// at most line_length_limit (2048) of a multi-line one. An upstream's
// reply may be 100 lines of 2,048 octets, kept for every recipient it
// answered, and an envelope past maxEnvelope cannot be read back: the
// message would be quarantined as torn. A message of very many
// recipients (virtual_alias_maps) keeps less of each, so that their
// replies together stay within keptReplies.
const (
	maxKeptReply = 2048
	keptReplies  = 6 << 20
)

// clipReply cuts a reply to what an envelope of n recipients keeps of
// it, at a character's start.
func clipReply(s string, n int) string {
	k := max(64, min(maxKeptReply, keptReplies/max(n, 1)))
	if len(s) <= k {
		return s
	}
	for k > 0 && !utf8.RuneStart(s[k]) {
		k--
	}
	return s[:k]
}

func b2s(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Marshal writes the envelope file's bytes: E-MailRelay's fields in its
// order, its End line, then relaykeeper's fields. Lines end in CRLF as
// E-MailRelay writes them.
func (e *Envelope) Marshal() []byte {
	var b bytes.Buffer
	b.Grow(1024) // most envelopes: one allocation, not five doublings
	f := func(prefix, k, v string) {
		b.WriteString(prefix)
		b.WriteString(k)
		b.WriteString(": ")
		b.WriteString(oneLine(v))
		b.WriteString("\r\n")
	}
	body := e.BodyType
	if body == "" {
		body = "8bit"
	}
	f(fieldPrefix, "Format", formatID)
	f(fieldPrefix, "Content", body)
	f(fieldPrefix, "From", e.From)
	// ToCount and To-Remote list the recipients still to be delivered
	// (pending, deferred or failed), which is what an E-MailRelay filter
	// or resubmit expects to find.
	pending := 0
	for _, r := range e.Recipients {
		if r.Status != Sent {
			pending++
		}
	}
	f(fieldPrefix, "ToCount", strconv.Itoa(pending+len(e.Local)))
	for _, m := range e.Local {
		f(fieldPrefix, "To-Local", m)
	}
	for _, r := range e.Recipients {
		if r.Status != Sent {
			f(fieldPrefix, "To-Remote", r.Addr)
		}
	}
	f(fieldPrefix, "Authentication", xtext.Encode(e.AuthID))
	f(fieldPrefix, "Client", e.Client)
	// E-MailRelay reads every field of its format in this order, this
	// one too; relaykeeper keeps no client certificate.
	f(fieldPrefix, "ClientCertificate", "")
	f(fieldPrefix, "MailFromAuthIn", e.MailFromAuthIn)
	f(fieldPrefix, "MailFromAuthOut", e.MailFromAuthOut)
	f(fieldPrefix, "ForwardTo", e.ForwardTo)
	f(fieldPrefix, "ForwardToAddress", e.ForwardToAddress)
	f(fieldPrefix, "ClientAccountSelector", e.ClientAccountSelector)
	f(fieldPrefix, "Utf8MailboxNames", b2s(e.SMTPUTF8))
	f(fieldPrefix, "End", "1")
	f(ownPrefix, "Helo", e.Helo)
	if e.ClientName != "" {
		f(ownPrefix, "Client-Name", e.ClientName)
	}
	f(ownPrefix, "Arrival", e.Arrival.UTC().Format(time.RFC3339Nano))
	f(ownPrefix, "Attempts", strconv.Itoa(e.Attempts))
	if !e.NextAttempt.IsZero() {
		f(ownPrefix, "Next-Attempt", e.NextAttempt.UTC().Format(time.RFC3339Nano))
	}
	if e.LastReply != "" {
		f(ownPrefix, "Last-Reply", clipReply(e.LastReply, 1))
	}
	if e.EnvID != "" {
		f(ownPrefix, "Envid", e.EnvID)
	}
	if e.Ret != "" {
		f(ownPrefix, "Ret", e.Ret)
	}
	if !e.Warned.IsZero() {
		f(ownPrefix, "Warned", e.Warned.UTC().Format(time.RFC3339Nano))
	}
	if !e.Requeued.IsZero() {
		f(ownPrefix, "Requeued", e.Requeued.UTC().Format(time.RFC3339Nano))
	}
	if e.Bounce {
		f(ownPrefix, "Bounce", "1")
	}
	for _, v := range e.Enforced {
		f(ownPrefix, "Enforced", v)
	}
	if e.Filtered {
		f(ownPrefix, "Filtered", "1")
	}
	if e.FilterTo != "" {
		f(ownPrefix, "Filter-To", e.FilterTo)
	}
	// DSN parameters per recipient: "ADDR NOTIFY=... ORCPT=...". ORCPT
	// is decoded xtext and may have blanks anywhere ("rfc822;a b", RFC
	// 3461 section 4.2), so it goes last, and one with a blank after a
	// NOTIFY field that is written even when empty: the reader then takes
	// the rest of the line as the ORCPT, never a blank's tail as another
	// parameter. A blank is any the reader trims (unicode.IsSpace): a
	// utf-8 ORCPT (RFC 6533) may end in U+00A0.
	for _, r := range e.Recipients {
		if r.Notify == "" && r.ORCPT == "" {
			continue
		}
		v := r.Addr
		if r.Notify != "" || strings.ContainsFunc(r.ORCPT, unicode.IsSpace) {
			v += " NOTIFY=" + r.Notify
		}
		if r.ORCPT != "" {
			v += " ORCPT=" + r.ORCPT
		}
		f(ownPrefix, "Dsn", v)
	}
	// One status line per recipient that has one: "STATUS ADDR REPLY".
	// A recipient named in To-Remote with no status line is pending.
	for _, r := range e.Recipients {
		if r.Status == Pending && r.Reply == "" {
			continue
		}
		v := string(r.Status) + " " + r.Addr
		if r.Reply != "" {
			v += " " + clipReply(r.Reply, len(e.Recipients))
		}
		f(ownPrefix, "Rcpt", v)
		if r.RemoteMTA != "" {
			f(ownPrefix, "Remote-MTA", r.Addr+" "+r.RemoteMTA)
		}
		if r.InReplyTo != "" {
			f(ownPrefix, "In-Reply-To", r.Addr+" "+r.InReplyTo)
		}
	}
	for _, l := range e.Reasons {
		// "X-MailRelay-Reason: ADDR: REPLY", one per refused recipient.
		b.WriteString(oneLine(clipReply(l, len(e.Reasons)/2)))
		b.WriteString("\r\n")
	}
	for _, l := range e.Extra {
		b.WriteString(oneLine(l))
		b.WriteString("\r\n")
	}
	return b.Bytes()
}

// ParseError is an envelope that cannot be read: a torn or hand-broken file.
type ParseError struct {
	Line int
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("envelope line %d: %s", e.Line, e.Msg)
}

// maxEnvelope bounds what Unmarshal reads, so that a runaway file cannot
// exhaust memory; a longer envelope is refused.
const maxEnvelope = 16 << 20

// Unmarshal parses an envelope file. It accepts what Marshal writes, what
// E-MailRelay 2.x writes, and either line ending; a file without the End line
// is torn and is an error.
func Unmarshal(r io.Reader) (*Envelope, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxEnvelope+1))
	if err != nil {
		return nil, &ParseError{1, err.Error()}
	}
	return UnmarshalBytes(b)
}

// UnmarshalBytes is Unmarshal of an envelope already in memory (one handed
// over by the session that committed it), without copying it first.
func UnmarshalBytes(b []byte) (*Envelope, error) {
	if len(b) > maxEnvelope {
		// Never readable from its file (readEnvelopeFile): refused
		// here too, not parsed as far as the limit.
		return nil, &ParseError{1, "more than an envelope may have"}
	}
	return unmarshalBytes(b)
}

// maxEnvelopeLine bounds one line of an envelope.
const maxEnvelopeLine = 1 << 20

// unmarshalBytes is Unmarshal of an envelope read whole. Its lines are
// cut from b (bufio.ScanLines's rules: LF or CRLF, a last line without
// one), each copied once into a string of its own, so that a field kept
// for long never holds the whole envelope's text.
func unmarshalBytes(b []byte) (*Envelope, error) {
	e := &Envelope{}
	var (
		lineNo   int
		sawEnd   bool
		sawFmt   bool
		toRemote []string
		status   = map[string]Recipient{}
		sent     []Recipient
		dsn      = map[string][2]string{}
		replied  = map[string]string{}
		remote   = map[string]string{}
		// fold says what a folded line (one starting with a space or a
		// tab) continues: a field not kept (E-MailRelay folds the PEM of
		// ClientCertificate over several lines), or a trailer line kept
		// verbatim.
		fold int
	)
	const (
		foldNone = iota
		foldSkip
		foldExtra
	)
	for len(b) > 0 {
		raw, rest, _ := bytes.Cut(b, []byte{'\n'})
		b = rest
		lineNo++
		if len(raw) > maxEnvelopeLine {
			return nil, &ParseError{lineNo, "line longer than 1 MiB"}
		}
		line := string(bytes.TrimRight(raw, "\r"))
		if fold != foldNone && (strings.HasPrefix(line, " ") || strings.HasPrefix(line, "\t")) {
			if fold == foldExtra {
				e.Extra = append(e.Extra, line)
			}
			continue
		}
		fold = foldNone
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			switch {
			case line == "":
				continue
			case sawEnd:
				// E-MailRelay reads up to End and allows free-form
				// lines after it: kept, as a trailer field would be.
				e.Extra = append(e.Extra, line)
				fold = foldExtra
				continue
			}
			return nil, &ParseError{lineNo, fmt.Sprintf("no colon in %q", trunc(line))}
		}
		// ENVID and ORCPT are kept decoded, and their xtext may
		// decode to blanks at either end (RFC 3461 sections 4.2 and
		// 4.4), which the relay must pass on as they came: those two
		// take the value as Marshal wrote it, after the one blank.
		exact := strings.TrimPrefix(val, " ")
		val = strings.TrimSpace(val)
		switch {
		case strings.HasPrefix(key, fieldPrefix) && !sawEnd:
			switch strings.TrimPrefix(key, fieldPrefix) {
			case "Format":
				if !strings.HasPrefix(val, "#2821.") {
					return nil, &ParseError{lineNo, fmt.Sprintf("unknown format %q", trunc(val))}
				}
				sawFmt = true
			case "Content":
				e.BodyType = val
			case "From":
				a, err := envelopeAddr(val)
				if err != nil {
					return nil, &ParseError{lineNo, "From: " + err.Error()}
				}
				e.From = a
			case "ToCount":
				// Recounted from the To lines.
			case "To-Local":
				if val == "" {
					return nil, &ParseError{lineNo, "To-Local: empty mailbox name"}
				}
				e.Local = append(e.Local, val)
			case "To-Remote", "To":
				a, err := envelopeAddr(val)
				if err == nil && a == "" {
					err = errNoAddr
				}
				if err != nil {
					return nil, &ParseError{lineNo, "recipient: " + err.Error()}
				}
				toRemote = append(toRemote, a)
			case "Authentication":
				// E-MailRelay writes xtext; a field that is not (an
				// envelope written by hand) is taken as it stands.
				id, err := xtext.Decode(val)
				if err != nil {
					id = val
				}
				e.AuthID = id
			case "Client":
				e.Client = val
			case "MailFromAuthIn":
				e.MailFromAuthIn = val
			case "MailFromAuthOut":
				e.MailFromAuthOut = val
			case "ForwardTo":
				e.ForwardTo = val
			case "ForwardToAddress":
				e.ForwardToAddress = val
			case "ClientAccountSelector":
				e.ClientAccountSelector = val
			case "Utf8MailboxNames", "Utf8MailboxName":
				e.SMTPUTF8 = val == "1"
			case "End":
				sawEnd = true
			default:
				// Older formats have fields we neither need nor keep
				// (ClientCertificate, Authentication of other shapes).
				fold = foldSkip
			}
		case !sawEnd:
			return nil, &ParseError{lineNo, fmt.Sprintf("unexpected line before End: %q", trunc(line))}
		case strings.HasPrefix(key, ownPrefix):
			var err error
			switch strings.TrimPrefix(key, ownPrefix) {
			case "Helo":
				e.Helo = val
			case "Client-Name":
				e.ClientName = val
			case "Arrival":
				e.Arrival, err = time.Parse(time.RFC3339Nano, val)
			case "Attempts":
				e.Attempts, err = strconv.Atoi(val)
			case "Next-Attempt":
				e.NextAttempt, err = time.Parse(time.RFC3339Nano, val)
			case "Last-Reply":
				e.LastReply = val
			case "Envid":
				e.EnvID = exact
			case "Ret":
				e.Ret = val
			case "Warned":
				e.Warned, err = time.Parse(time.RFC3339Nano, val)
			case "Requeued":
				e.Requeued, err = time.Parse(time.RFC3339Nano, val)
			case "Bounce":
				e.Bounce = val == "1"
			case "Enforced":
				e.Enforced = append(e.Enforced, val)
			case "Filtered":
				e.Filtered = val == "1"
			case "Filter-To":
				e.FilterTo = val
			case "Dsn":
				addr, rest := cutAddr(val)
				rest, orcpt, found := strings.Cut(rest, "ORCPT=")
				var p [2]string
				switch {
				case found && strings.Contains(rest, "NOTIFY="):
					// As Marshal writes it: the ORCPT is the rest
					// of the line, blanks and all.
					p[1] = orcpt + exact[len(strings.TrimRightFunc(exact, unicode.IsSpace)):]
				case found:
					// Written by hand, perhaps with NOTIFY after
					// it: ORCPT's address, like ADDR, may have
					// blanks in quotes.
					typ, a, _ := strings.Cut(orcpt, ";")
					a, tail := cutAddr(a)
					p[1], rest = typ+";"+a, rest+" "+tail
				}
				for _, kv := range strings.Fields(rest) {
					if v, ok := strings.CutPrefix(kv, "NOTIFY="); ok {
						p[0] = v
					}
				}
				if addr != "" {
					dsn[addr] = p
				}
			case "Remote-MTA":
				addr, host := cutAddr(val)
				remote[addr] = host
			case "In-Reply-To":
				addr, cmd := cutAddr(val)
				replied[addr] = cmd
			case "Rcpt":
				st, rest, _ := strings.Cut(val, " ")
				addr, reply := cutAddr(rest)
				r := Recipient{Addr: addr, Status: RcptStatus(st), Reply: reply}
				switch r.Status {
				case Pending, Deferred, Bounced:
					status[addr] = r
				case Sent:
					sent = append(sent, r)
				default:
					return nil, &ParseError{lineNo, fmt.Sprintf("unknown recipient status %q", trunc(st))}
				}
			default:
				e.Extra = append(e.Extra, line)
				fold = foldExtra
			}
			if err != nil {
				return nil, &ParseError{lineNo, fmt.Sprintf("bad %s: %v", key, err)}
			}
		case strings.HasPrefix(key, fieldPrefix+"Reason"):
			e.Reasons = append(e.Reasons, line)
		default:
			e.Extra = append(e.Extra, line)
			fold = foldExtra
		}
	}
	if !sawFmt {
		return nil, &ParseError{1, "no Format line"}
	}
	if !sawEnd {
		return nil, &ParseError{lineNo, "no End line (torn file)"}
	}
	// Recipients: the delivered ones first, as they were, then those still
	// named in To-Remote with their status. A filter may have added or
	// removed To-Remote lines; what it says there wins.
	e.Recipients = append(e.Recipients, sent...)
	for _, a := range toRemote {
		if r, ok := status[a]; ok {
			e.Recipients = append(e.Recipients, r)
		} else {
			e.Recipients = append(e.Recipients, Recipient{Addr: a, Status: Pending})
		}
	}
	for i := range e.Recipients {
		if p, ok := dsn[e.Recipients[i].Addr]; ok {
			e.Recipients[i].Notify, e.Recipients[i].ORCPT = p[0], p[1]
		}
		if e.Recipients[i].Reply != "" {
			e.Recipients[i].InReplyTo = replied[e.Recipients[i].Addr]
			e.Recipients[i].RemoteMTA = remote[e.Recipients[i].Addr]
		}
	}
	return e, nil
}

var errNoAddr = errors.New("empty address")

// cutAddr cuts the address that starts a line of relaykeeper's fields
// ("ADDR REST") from the rest: at the first blank outside a quoted local
// part, as envelopeAddr reads addresses ("john smith"@example.net is
// one).
func cutAddr(s string) (addr, rest string) {
	addr = s
	walkAddr(s, func(i int, c byte, quoted bool) bool {
		if !quoted && c == ' ' {
			addr, rest = s[:i], s[i+1:]
			return false
		}
		return true
	})
	return addr, rest
}

// envelopeAddr is an envelope's From or To value as it goes into MAIL
// FROM:<...> or RCPT TO:<...>: one pair of angle brackets around it is
// taken off (a hand-edited envelope may have them). Outside a quoted local
// part an address has no space, no angle bracket; nowhere a control
// character: "a@b> BODY=8BITMIME" or "a@b>\rRSET" would otherwise be
// written into the command as ESMTP parameters or another command.
func envelopeAddr(val string) (string, error) {
	if len(val) >= 2 && val[0] == '<' && val[len(val)-1] == '>' {
		val = val[1 : len(val)-1]
	}
	var err error
	walkAddr(val, func(_ int, c byte, quoted bool) bool {
		switch {
		case c < 0x20 || c == 0x7f:
			err = fmt.Errorf("control character %q in address", c)
		case !quoted && (c == ' ' || c == '<' || c == '>'):
			err = fmt.Errorf("%q in address %q", c, trunc(val))
		}
		return err == nil
	})
	if err != nil {
		return "", err
	}
	return val, nil
}

// walkAddr calls visit with each octet of an address and whether it is
// inside a quoted local part (a quote, or one a backslash escapes, counts
// as inside), until visit returns false.
func walkAddr(s string, visit func(i int, c byte, quoted bool) bool) {
	quoted, escaped := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		in := quoted || escaped || c == '"'
		switch {
		case escaped:
			escaped = false
		case quoted && c == '\\':
			escaped = true
		case c == '"':
			quoted = !quoted
		}
		if !visit(i, c, in) {
			return
		}
	}
}

func trunc(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// ExpandRecipients replaces each pending recipient by the addresses expand
// gives it (virtual_alias_maps), each with the recipient's NOTIFY and, as
// ORCPT, the address the client gave (RFC 3461 section 4.2); a recipient
// expand leaves alone stays as it is. An address met twice is kept once
// (MergeDuplicates). An error of expand's is the whole message's: no
// recipients then.
func ExpandRecipients(rs []Recipient, expand func(string) ([]string, bool, error)) ([]Recipient, error) {
	var out []Recipient
	add := func(r Recipient) { out = append(out, r) }
	for _, r := range rs {
		if r.Status != Pending {
			add(r)
			continue
		}
		addrs, changed, err := expand(r.Addr)
		if err != nil {
			return nil, err
		}
		if !changed {
			add(r)
			continue
		}
		orcpt := r.ORCPT
		if orcpt == "" && !strings.ContainsFunc(r.Addr, func(c rune) bool { return c >= 0x80 }) {
			orcpt = "rfc822;" + r.Addr
		}
		notify := r.Notify
		if len(addrs) > 1 {
			notify = withoutSuccess(notify)
		}
		for _, a := range addrs {
			add(Recipient{Addr: a, Status: Pending, Notify: notify, ORCPT: orcpt})
		}
	}
	return MergeDuplicates(out), nil
}

// withoutSuccess is a NOTIFY value without SUCCESS, for the members of an
// alias of several: a success notice per member would tell the sender who
// is on the alias. Postfix clears SUCCESS on them the same way and sends
// one "expanded" notice for the alias instead (RFC 3461 section 6.2.7),
// which relaykeeper does not send.
func withoutSuccess(notify string) string {
	var keep []string
	for _, w := range strings.Split(notify, ",") {
		if w = strings.TrimSpace(w); w != "" && !strings.EqualFold(w, "SUCCESS") {
			keep = append(keep, w)
		}
	}
	if len(keep) == 0 && notify != "" {
		return "NEVER"
	}
	return strings.Join(keep, ",")
}
