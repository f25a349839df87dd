package bounce

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/internal/xtext"
)

// textPart is the notice for people, in the words of Postfix's default
// templates, which senders and help desks have learnt to read.
func textPart(env *spool.Envelope, k Kind, rcpts []spool.Recipient, opts Options, now time.Time) part {
	var b strings.Builder
	line := func(s string) { b.WriteString(s + "\r\n") }
	line("This is the mail system at host " + opts.ReportingMTA + ".")
	line("")
	switch k {
	case Failure:
		line("I'm sorry to have to inform you that your message could not")
		line("be delivered to one or more recipients. It's attached below.")
		line("")
		line("For further assistance, please send mail to postmaster.")
		line("")
		line("If you do so, please include this problem report. You can")
		line("delete your own text from the attached returned message.")
	case Delay:
		line("####################################################################")
		line("# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #")
		line("####################################################################")
		line("")
		var s []string
		if h := int(now.Sub(env.Arrival).Hours()); !env.Arrival.IsZero() && h >= 1 {
			s = append(s, fmt.Sprintf("Your message could not be delivered for more than %d hour(s).", h))
		} else {
			s = append(s, "Your message could not be delivered yet.")
		}
		if !opts.RetryUntil.IsZero() && !env.Arrival.IsZero() {
			s = append(s, "It will be retried until it is "+age(opts.RetryUntil.Sub(env.Arrival))+" old.")
		}
		wrap(&b, strings.Join(s, " "), "")
		line("")
		line("For further assistance, please send mail to postmaster.")
		line("")
		line("If you do so, please include this problem report. You can")
		line("delete your own text from the attached returned message.")
	case Success:
		line("Your message was successfully delivered to the destination(s)")
		line("listed below. If the message was delivered to mailbox you will")
		line("receive no further notifications. Otherwise you may still receive")
		line("notifications of mail delivery errors from other systems.")
	}
	line("")
	line("                   The mail system")
	for _, r := range rcpts {
		line("")
		wrap(&b, "<"+r.Addr+">: "+explain(env, k, r, opts), "    ")
	}
	p := part{body: []byte(b.String())}
	p.eightBit = !ascii(p.body)
	fields := []string{"Content-Description", "Notification", "Content-Type", "text/plain; charset=us-ascii"}
	if p.eightBit {
		// Only an SMTPUTF8 address or reply gets here (RFC 6532).
		fields = []string{"Content-Description", "Notification", "Content-Type", "text/plain; charset=utf-8",
			"Content-Transfer-Encoding", "8bit"}
	}
	p.header = header(fields...)
	return p
}

// age says d in whole days, or hours when it is less than a day, or
// minutes when less than an hour.
func age(d time.Duration) string {
	switch {
	case d >= 24*time.Hour:
		return fmt.Sprintf("%d day(s)", int(math.Round(d.Hours()/24)))
	case d >= time.Hour:
		return fmt.Sprintf("%d hour(s)", int(math.Round(d.Hours())))
	}
	return fmt.Sprintf("%d minute(s)", max(1, int(math.Round(d.Minutes()))))
}

// explain is a recipient's line in the text part after "<addr>: ", as
// Postfix words it: "host NAME said: REPLY (in reply to RCPT TO command)"
// for a remote reply.
func explain(env *spool.Envelope, k Kind, r spool.Recipient, opts Options) string {
	s := explainReply(env, k, r, opts)
	if r.InReplyTo != "" && r.Reply != "" && k != Success {
		s += " (in reply to " + r.InReplyTo + " command)"
	}
	return s
}

func explainReply(env *spool.Envelope, k Kind, r spool.Recipient, opts Options) string {
	reply := reason(env, r)
	_, smtp := replyCode(reply)
	remote := remoteMTA(r, opts)
	switch {
	case reply == "" && k == Success:
		return "relayed"
	case reply == "":
		return "no reason was recorded"
	case smtp && remote != "" && k == Success:
		return "delivery via " + remote + ": " + reply
	case smtp && remote != "":
		return "host " + remote + " said: " + reply
	}
	return reply
}

// expiredWords start the account of a recipient that outlived the queue,
// and lastWords lead to the last reply it had, in Expired's wording.
const (
	expiredWords = "message delivery expired after "
	lastWords    = " in the queue; last reply: "
)

// Expired is the account of a recipient still deferred after age in the
// queue (max_queue_lifetime), with the last reply it had.
func Expired(age time.Duration, last string) string {
	return expiredWords + humanAge(age) + lastWords + last
}

// humanAge says a queue age as a person reads one, "5 days 3 seconds",
// where Go's "120h0m3s" reads like an error code in a notice.
func humanAge(d time.Duration) string {
	d = d.Round(time.Second)
	if d <= 0 {
		return "0 seconds"
	}
	var parts []string
	for _, u := range []struct {
		name string
		size time.Duration
	}{{"day", 24 * time.Hour}, {"hour", time.Hour}, {"minute", time.Minute}, {"second", time.Second}} {
		n := d / u.size
		d -= n * u.size
		switch {
		case n == 1:
			parts = append(parts, "1 "+u.name)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %ss", n, u.name))
		}
	}
	return strings.Join(parts, " ")
}

// expiredLast returns the last reply in an account Expired wrote, and
// whether reply is one.
func expiredLast(reply string) (string, bool) {
	rest, ok := strings.CutPrefix(reply, expiredWords)
	if !ok {
		return "", false
	}
	_, last, ok := strings.Cut(rest, strings.TrimSpace(lastWords)) // reason trims an empty one's space
	return strings.TrimSpace(last), ok
}

// reason is what went wrong for r: its own reply, or else the message's
// (a refused connection, a reply to MAIL or DATA, which concern every
// recipient).
func reason(env *spool.Envelope, r spool.Recipient) string {
	if r.Reply != "" {
		return oneLine(r.Reply)
	}
	return oneLine(env.LastReply)
}

func oneLine(s string) string {
	return strings.TrimSpace(strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(s))
}

// wrap writes s in lines of at most 76 columns where the words allow,
// continuation lines starting with indent, as Postfix's bounce_print_wrap.
func wrap(b *strings.Builder, s, indent string) {
	const width = 76
	col := 0
	for i, w := range chunks(strings.Fields(s)) {
		if i > 0 && col+1+len(w) > width {
			b.WriteString("\r\n" + indent)
			col = len(indent)
		} else if i > 0 {
			b.WriteByte(' ')
			col++
		}
		b.WriteString(w)
		col += len(w)
	}
	b.WriteString("\r\n")
}

// statusPart is the message/delivery-status part (RFC 3464 section 2):
// the per-message fields, then one group per recipient, fields in the
// order of the RFC's grammar.
func statusPart(env *spool.Envelope, k Kind, rcpts []spool.Recipient, opts Options, now time.Time) part {
	var b strings.Builder
	if env.EnvID != "" {
		b.WriteString(field("Original-Envelope-Id", env.EnvID))
	}
	b.WriteString(field("Reporting-MTA", "dns; "+opts.ReportingMTA))
	if !env.Arrival.IsZero() {
		b.WriteString(field("Arrival-Date", env.Arrival.In(now.Location()).Format(time.RFC1123Z)))
	}
	if env.ID != "" {
		// An extension field (section 2.4), as Postfix's
		// X-Postfix-Queue-ID, so that a notice leads to the log lines.
		b.WriteString(field("X-Relaykeeper-Queue-ID", env.ID))
	}
	for _, r := range rcpts {
		host := remoteHost(remoteMTA(r, opts))
		b.WriteString("\r\n")
		if r.ORCPT != "" {
			// Stored as the client sent it, xtext already decoded:
			// "rfc822;user@example.com" (RFC 3461 section 4.2).
			orcpt := r.ORCPT
			if !strings.Contains(orcpt, ";") {
				orcpt = "rfc822;" + orcpt // a bare address; the type is required
			}
			if typ, addr, _ := strings.Cut(orcpt, ";"); strings.EqualFold(typ, "utf-8") &&
				strings.ContainsFunc(addr, func(c rune) bool { return c <= ' ' || c == 0x7f || c == '\\' }) {
				// RFC 6533's decoder lets a control character, DEL
				// or a blank through, which no mailbox has: such an
				// address goes in utf-8-addr-unitext, never raw.
				orcpt = typ + ";" + xtext.EncodeUTF8AddrUnitext(addr)
			}
			b.WriteString(field("Original-Recipient", orcpt))
		}
		addrType := "rfc822; "
		if !ascii([]byte(r.Addr)) {
			addrType = "utf-8; " // RFC 6533 section 3
		}
		b.WriteString(field("Final-Recipient", addrType+r.Addr))
		b.WriteString(field("Action", action(k, r, opts)))
		reply := reason(env, r)
		st := status(reply, k)
		if last, ok := expiredLast(reply); ok {
			// Failed for want of time, not refused: the last
			// deferral's status, as Postfix keeps it, else RFC
			// 3463's "delivery time expired"; both in class 4, so
			// that no bounce processor counts it as a hard bounce.
			if st = status(last, Delay); st == "4.0.0" && last == "" {
				st = "4.4.7"
			}
			if _, smtp := replyCode(last); smtp {
				reply = last
			}
		}
		b.WriteString(field("Status", st))
		_, smtp := replyCode(reply)
		if smtp && host != "" {
			b.WriteString(field("Remote-MTA", "dns; "+host))
		}
		switch {
		case smtp:
			b.WriteString(field("Diagnostic-Code", "smtp; "+reply))
		case reply != "":
			// Not an SMTP reply but our own account of the failure
			// (a refused connection), as Postfix's "X-Postfix;".
			b.WriteString(field("Diagnostic-Code", "X-Relaykeeper; "+reply))
		}
		if env.Attempts > 0 {
			b.WriteString(field("Last-Attempt-Date", now.Format(time.RFC1123Z)))
		}
		if k == Delay && !opts.RetryUntil.IsZero() {
			b.WriteString(field("Will-Retry-Until", opts.RetryUntil.In(now.Location()).Format(time.RFC1123Z)))
		}
	}
	p := part{body: []byte(b.String())}
	p.eightBit = !ascii(p.body)
	fields := []string{"Content-Description", "Delivery report", "Content-Type", "message/delivery-status"}
	if p.eightBit {
		// message/delivery-status is ASCII only; a UTF-8 address or
		// reply makes it RFC 6533's message/global-delivery-status.
		fields = []string{"Content-Description", "Delivery report", "Content-Type", globalStatus,
			"Content-Transfer-Encoding", "8bit"}
	}
	p.header = header(fields...)
	return p
}

// globalStatus is the delivery status part's type when it holds UTF-8
// (RFC 6533 section 6.2); the report's report-type names it too.
const globalStatus = "message/global-delivery-status"

// actions are the Action field's values (RFC 3464 section 2.3.3). A
// success notice is only sent when the upstream took no DSN request, so
// the message was relayed, not delivered.
var actions = [...]string{Failure: "failed", Delay: "delayed", Success: "relayed"}

// action is r's Action in a notice of kind k. A success the relay
// itself gave (a discard: transport, no upstream involved) is
// "delivered", as Postfix's discard(8) reports it: nothing will follow.
func action(k Kind, r spool.Recipient, opts Options) string {
	if k == Success && r.Reply != "" && remoteMTA(r, opts) == "" {
		return "delivered"
	}
	return actions[k]
}

// remoteMTA is the upstream whose reply r has: the one recorded with it,
// else the smarthost of opts for an upstream's reply to a command
// recorded without its host. A reply with neither is the relay's own (a
// client filter's refusal, a transport's error:), which no upstream said.
func remoteMTA(r spool.Recipient, opts Options) string {
	switch {
	case r.RemoteMTA != "":
		return r.RemoteMTA
	case r.InReplyTo != "":
		return opts.RemoteMTA
	}
	return ""
}

// remoteHost is the name in "name[address]", or the whole of s.
func remoteHost(s string) string {
	if i := strings.IndexByte(s, '['); i > 0 {
		return s[:i]
	}
	return s
}

// replyCode returns the reply code that starts reply, and whether there is
// one: "550 5.1.1 no such user" or "451-4.3.0 ..." (a multi-line reply on
// one line, as reply.Reply.String writes it).
func replyCode(reply string) (string, bool) {
	if len(reply) < 3 || reply[0] < '2' || reply[0] > '5' ||
		!isDigit(reply[1]) || !isDigit(reply[2]) || len(reply) > 3 && reply[3] != ' ' && reply[3] != '-' {
		return "", false
	}
	return reply[:3], true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// status is the Status field (RFC 3463): the reply's enhanced code if it
// has one, in the reply code's class if the two disagree; else the class
// of the reply code with ".0.0"; else what the kind of notice implies.
func status(reply string, k Kind) string {
	if code, ok := replyCode(reply); ok && code[0] != '3' {
		class := code[:1]
		if e := enhanced(reply[min(4, len(reply)):]); e != "" {
			return class + e[1:]
		}
		return class + ".0.0"
	}
	if e := enhanced(reply); e != "" && (e[0] == '5') == (k == Failure) {
		return e // the relay's own account, as "5.6.7 ..." (reply.Account)
	}
	return [...]string{Failure: "5.0.0", Delay: "4.0.0", Success: "2.0.0"}[k]
}

// enhanced returns the RFC 3463 code that starts s, if any.
func enhanced(s string) string {
	code, _, _ := strings.Cut(s, " ")
	f := strings.Split(code, ".")
	if len(f) != 3 || f[0] != "2" && f[0] != "4" && f[0] != "5" {
		return ""
	}
	for _, n := range f[1:] {
		if len(n) < 1 || len(n) > 3 || strings.TrimLeft(n, "0123456789") != "" {
			return ""
		}
	}
	return code
}

// originalPart returns the original whole (message/rfc822) or its header
// section (text/rfc822-headers), as RET and the size limit decide.
func originalPart(env *spool.Envelope, content io.Reader, k Kind, opts Options) (part, error) {
	limit := opts.MaxReturnSize
	if limit == 0 {
		limit = DefaultMaxReturnSize
	}
	// RFC 3461 section 4.3: RET is for a notice that reports a failure;
	// any other returns the headers, whatever RET says, as Postfix's
	// delay and success notices do.
	headersOnly := k != Failure || strings.EqualFold(env.Ret, "HDRS") || opts.ReturnHeadersOnly

	r := content
	if limit > 0 {
		r = io.LimitReader(content, limit+1)
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return part{}, fmt.Errorf("bounce: reading the original: %w", err)
	}
	cut := limit > 0 && int64(len(data)) > limit
	if cut {
		headersOnly = true
		data = data[:limit]
	}
	desc := "Message"
	if k != Success {
		desc = "Undelivered Message"
	}
	ctype := "message/rfc822"
	if headersOnly {
		data = headerSection(data, cut)
		desc += " Headers"
		ctype = "text/rfc822-headers"
	}
	data = breakLongLines(data)
	p := part{body: data, eightBit: !ascii(data)}
	if h := headerSection(data, cut); !ascii(h) && utf8.Valid(h) {
		// A UTF-8 header field (RFC 6532) is allowed in RFC 6533's
		// types only; those carry UTF-8, so a header of other 8-bit
		// octets (Latin-1) goes back in RFC 3462's, as it came.
		ctype = map[bool]string{false: "message/global", true: "message/global-headers"}[headersOnly]
	}
	fields := []string{"Content-Description", desc, "Content-Type", ctype}
	if p.eightBit {
		// RFC 2046 section 5.2.1: message/rfc822 may not be encoded
		// other than 7bit, 8bit or binary; it is returned as it came.
		fields = append(fields, "Content-Transfer-Encoding", "8bit")
	}
	p.header = header(fields...)
	return p, nil
}

// maxOriginalLine is RFC 5322's limit on a line, CRLF not counted
// (section 2.1.1), and Postfix's smtp_line_length_limit.
const maxOriginalLine = 998

// breakLongLines breaks the returned original's lines longer than
// maxOriginalLine, as Postfix's smtp client does when it sends them: in
// the header section with CRLF and a space, so that the rest stays in
// the same field, in the body with CRLF. A notice is the relay's own
// message, and an upstream that refused the original for such a line
// would refuse the notice too. A UTF-8 character is never cut in two.
func breakLongLines(msg []byte) []byte {
	if len(msg) == 0 {
		return msg
	}
	out := make([]byte, 0, len(msg)+len(msg)/maxOriginalLine*3)
	inHeader := true
	for rest := msg; len(rest) > 0; {
		line, tail, found := bytes.Cut(rest, []byte("\n"))
		rest = tail
		text := bytes.TrimSuffix(line, []byte("\r"))
		if len(text) == 0 {
			inHeader = false
		}
		if len(text) <= maxOriginalLine {
			out = append(out, line...)
			if found {
				out = append(out, '\n')
			}
			continue
		}
		for first := true; len(text) > 0; first = false {
			n := maxOriginalLine
			if !first && inHeader {
				out = append(out, ' ')
				n--
			}
			n = min(n, len(text))
			for n > 1 && n < len(text) && text[n]&0xC0 == 0x80 {
				n--
			}
			out = append(out, text[:n]...)
			text = text[n:]
			if len(text) > 0 || found {
				out = append(out, '\r', '\n')
			}
		}
	}
	return out
}

// headerSection returns the header fields at the start of msg, up to and
// including the line end before the empty line. If msg was cut short
// before its header ended, it returns whole lines only.
func headerSection(msg []byte, cut bool) []byte {
	if len(msg) > 0 && msg[0] == '\n' || bytes.HasPrefix(msg, []byte("\r\n")) {
		return nil
	}
	for i := 0; i < len(msg); {
		j := bytes.IndexByte(msg[i:], '\n')
		if j < 0 {
			break
		}
		next := i + j + 1
		if next < len(msg) && msg[next] == '\n' || bytes.HasPrefix(msg[next:], []byte("\r\n")) {
			return msg[:next]
		}
		i = next
	}
	if !cut {
		return msg // all header, no body
	}
	return msg[:bytes.LastIndexByte(msg, '\n')+1]
}

func ascii(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}
