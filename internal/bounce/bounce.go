// Package bounce writes delivery status notifications: the failure notices,
// delay warnings and "relayed" reports that relaykeeper sends back to a
// message's envelope sender, laid out as Postfix lays them out.
//
// A notice is a multipart/report (RFC 6522, formerly RFC 3462) with
// report-type=delivery-status and three parts: a human-readable text/plain,
// a machine-readable message/delivery-status (RFC 3464), and the original
// message as message/rfc822 or only its header section as
// text/rfc822-headers. About an internationalized message (a UTF-8
// recipient, reply or header field) the status part is
// message/global-delivery-status and the original message/global or
// message/global-headers, as RFC 6533 says. Who gets which notice follows
// the client's DSN
// parameters (RFC 3461): NOTIFY per recipient, RET and ENVID per message.
// A notice is marked Auto-Submitted: auto-replied (RFC 3834), is sent from
// the null sender, and is never sent about a message that is itself a
// notice, so that two systems cannot bounce mail to each other forever.
//
// Build only writes bytes; Notifier queues the notice (from <> to the
// original sender), 8-bit when the returned original is or when anything
// else in it is (an upstream's reply in UTF-8).
package bounce

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/emersion/go-message/textproto"

	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// Kind is the kind of notice.
type Kind int

// The kinds of notice, after the NOTIFY keywords of RFC 3461.
const (
	// Failure reports recipients that failed permanently.
	Failure Kind = iota
	// Delay warns that recipients are still being retried.
	Delay
	// Success reports recipients relayed to an upstream that did not take
	// the DSN request along, so that this is the last word the sender
	// will get (RFC 3461 section 5.2.2.2, Action: relayed).
	Success
)

func (k Kind) String() string {
	switch k {
	case Failure:
		return "failure"
	case Delay:
		return "delay"
	case Success:
		return "success"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// DefaultMaxReturnSize is how much of the original a notice returns when
// Options.MaxReturnSize is zero: Postfix's bounce_size_limit.
const DefaultMaxReturnSize = 50000

// Options are what Build needs besides the message. The zero value works
// except for ReportingMTA.
type Options struct {
	// ReportingMTA is this host's name, for "Reporting-MTA: dns; NAME",
	// the From address MAILER-DAEMON@NAME and the text's greeting.
	ReportingMTA string
	// RemoteMTA is the upstream the recipients' replies came from, as
	// "name" or "name[address]" (the smarthost). If set, an SMTP reply is
	// introduced as "host NAME said:" and reported in Remote-MTA.
	RemoteMTA string
	// Now is when the notice is made, taken also as the time of the last
	// delivery attempt. Zero means time.Now().
	Now time.Time
	// RetryUntil is when the message will be given up (its arrival plus
	// the queue lifetime), for the delay warning's Will-Retry-Until and
	// text. Zero leaves both out.
	RetryUntil time.Time
	// ReturnHeadersOnly returns the original's header section even when
	// RET=FULL. Otherwise a failure notice returns the full message
	// unless RET=HDRS, and a delay or success notice its headers whatever
	// RET says (RFC 3461 section 4.3), as Postfix does.
	ReturnHeadersOnly bool
	// MaxReturnSize is the largest original returned whole; a larger one
	// is returned headers-only (at most this many bytes of them, cut at a
	// line end). Zero means DefaultMaxReturnSize, negative no limit.
	MaxReturnSize int64
	// MessageID returns the notice's Message-Id, angle brackets included.
	// Nil means a random one at ReportingMTA.
	MessageID func() string
}

// Recipients returns the recipients of env that get a notice of kind k:
// failed ones for Failure, those still pending or deferred for Delay, and
// delivered ones for Success, each only if its NOTIFY asks for that kind.
// A recipient without NOTIFY is notified of failure and delay, which is
// Postfix's reading of RFC 3461 section 4.1 (the default is left to the
// implementation) and what senders expect.
func Recipients(env *spool.Envelope, k Kind) []spool.Recipient {
	var out []spool.Recipient
	for _, r := range env.Recipients {
		var in bool
		switch k {
		case Failure:
			in = r.Status == spool.Bounced
		case Delay:
			in = !r.Done()
		case Success:
			in = r.Status == spool.Sent
		}
		if in && wants(r.Notify, k) {
			out = append(out, r)
		}
	}
	return out
}

// wants reports whether a NOTIFY value ("SUCCESS,FAILURE", "NEVER", or
// empty) asks for a notice of kind k.
func wants(notify string, k Kind) bool {
	if strings.TrimSpace(notify) == "" {
		return k == Failure || k == Delay
	}
	words := strings.Split(strings.ToUpper(notify), ",")
	for _, w := range words {
		// RFC 3461 section 4.1: NEVER stands alone; if a client got it
		// past the server with others, the safe reading is NEVER.
		if strings.TrimSpace(w) == "NEVER" {
			return false
		}
	}
	for _, w := range words {
		switch strings.TrimSpace(w) {
		case "FAILURE":
			if k == Failure {
				return true
			}
		case "DELAY":
			if k == Delay {
				return true
			}
		case "SUCCESS":
			if k == Success {
				return true
			}
		}
	}
	return false
}

// Needed reports whether a notice of kind k must be sent about env. Never
// to the null sender (RFC 5321 section 4.5.5, RFC 3464 section 2), never
// about a notice relaykeeper made itself, and never when no recipient asks
// for one.
func Needed(env *spool.Envelope, k Kind) bool {
	if env.From == "" || env.From == "<>" || env.Bounce {
		return false
	}
	return len(Recipients(env, k)) > 0
}

// Build writes the notice of kind k about rcpts (usually Recipients(env, k))
// to w: the whole message, header and body, with CRLF line endings, to be
// sent from <> to env.From. content is the original message as spooled; nil
// leaves the third part out (RFC 6522 makes it optional).
func Build(w io.Writer, env *spool.Envelope, content io.Reader, k Kind, rcpts []spool.Recipient, opts Options) error {
	switch {
	case opts.ReportingMTA == "":
		return errors.New("bounce: no reporting MTA name")
	case env.From == "" || env.From == "<>":
		return errors.New("bounce: no notice goes to the null sender")
	case len(rcpts) == 0:
		return errors.New("bounce: no recipients to report")
	case k < Failure || k > Success:
		return fmt.Errorf("bounce: unknown notice %v", k)
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}

	var parts []part
	parts = append(parts, textPart(env, k, rcpts, opts, now), statusPart(env, k, rcpts, opts, now))
	if content != nil {
		p, err := originalPart(env, content, k, opts)
		if err != nil {
			return err
		}
		parts = append(parts, p)
	}

	boundary := pickBoundary(env.ID, now, opts.ReportingMTA, parts)
	mid := ""
	if opts.MessageID != nil {
		mid = opts.MessageID()
	} else {
		mid = "<" + now.UTC().Format("20060102150405") + "." + rand.Text()[:12] + "@" + opts.ReportingMTA + ">"
	}
	reportType := "delivery-status"
	if parts[1].header.Get("Content-Type") == globalStatus {
		reportType = "global-delivery-status" // the status part's subtype (RFC 6522)
	}
	fields := []string{
		"From", "MAILER-DAEMON@" + opts.ReportingMTA + " (Mail Delivery System)",
		"To", env.From,
		"Subject", subjects[k],
		"Date", now.Format(time.RFC1123Z),
		"Message-Id", mid,
		"Auto-Submitted", "auto-replied",
		"MIME-Version", "1.0",
		"Content-Type", `multipart/report; report-type=` + reportType + `; boundary="` + boundary + `"`,
	}
	for _, p := range parts {
		if p.eightBit {
			// RFC 2045 section 6.4: a multipart holding an 8-bit part
			// is itself 8bit.
			fields = append(fields, "Content-Transfer-Encoding", "8bit")
			break
		}
	}
	if err := textproto.WriteHeader(w, header(fields...)); err != nil {
		return fmt.Errorf("bounce: %w", err)
	}
	// A preamble for readers that do not know MIME, as Postfix writes.
	if _, err := io.WriteString(w, "This is a MIME-encapsulated message.\r\n\r\n"); err != nil {
		return fmt.Errorf("bounce: %w", err)
	}
	mw := textproto.NewMultipartWriter(w)
	if err := mw.SetBoundary(boundary); err != nil {
		return fmt.Errorf("bounce: boundary %q: %w", boundary, err)
	}
	for _, p := range parts {
		pw, err := mw.CreatePart(p.header)
		if err != nil {
			return fmt.Errorf("bounce: %w", err)
		}
		// The body goes in as it is: no transfer encoding and no line
		// wrapping, so that the returned original keeps its bytes.
		if _, err := pw.Write(p.body); err != nil {
			return fmt.Errorf("bounce: %w", err)
		}
	}
	if err := mw.Close(); err != nil {
		return fmt.Errorf("bounce: %w", err)
	}
	return nil
}

var subjects = [...]string{
	Failure: "Undelivered Mail Returned to Sender",
	Delay:   "Delayed Mail (still being retried)",
	Success: "Successful Mail Delivery Report",
}

// part is one body part, complete before anything is written so that the
// boundary can be chosen to occur in none of them.
type part struct {
	header   textproto.Header
	body     []byte
	eightBit bool
}

// pickBoundary returns a boundary in Postfix's shape, QUEUEID.TIME/HOST,
// which is stable for a given notice (golden tests, reproducible output),
// with a counter added if a part happens to contain it: the original is
// the sender's text and could.
func pickBoundary(id string, now time.Time, host string, parts []part) string {
	base := boundarySafe(id)
	if base == "" {
		base = "bounce"
	}
	base += "." + strconv.FormatInt(now.Unix(), 10) + "/" + boundarySafe(host)
	// RFC 2046 section 5.1.1: at most 70 characters; keep room for a
	// counter.
	if len(base) > 60 {
		base = base[:60]
	}
	b := base
	for n := 1; ; n++ {
		clash := false
		for _, p := range parts {
			if bytes.Contains(p.body, []byte("--"+b)) {
				clash = true
				break
			}
		}
		if !clash {
			return b
		}
		b = base + "." + strconv.Itoa(n)
	}
}

// boundarySafe keeps the characters of s that may appear in a boundary and
// need no second thought inside a quoted parameter.
func boundarySafe(s string) string {
	return strings.Map(func(r rune) rune {
		if 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return -1
	}, s)
}

// header makes a header with the given name/value pairs in that order.
// Fields are formatted here rather than by textproto, which would
// canonicalise "MIME-Version" to "Mime-Version".
func header(kv ...string) textproto.Header {
	var h textproto.Header
	// textproto.WriteHeader writes the last field added first.
	for i := len(kv) - 2; i >= 0; i -= 2 {
		h.AddRaw([]byte(field(kv[i], kv[i+1])))
	}
	return h
}

// maxLine is the line length folding aims for (RFC 5322 section 2.1.1).
const maxLine = 78

// field formats "Name: value" with its CRLF, folded before spaces so that
// lines stay within maxLine where the words allow (RFC 5322 section
// 2.2.3). Unfolding gives the value back unchanged, except for a word too
// long for any line (chunks), which is split.
func field(name, value string) string {
	value = strings.NewReplacer("\r\n", " ", "\r", " ", "\n", " ").Replace(value)
	var b strings.Builder
	b.WriteString(name)
	b.WriteByte(':')
	col := len(name) + 1
	onLine := 0
	for _, w := range chunks(strings.Split(value, " ")) {
		if onLine > 0 && col+1+len(w) > maxLine {
			b.WriteString("\r\n")
			col, onLine = 0, 0
		}
		b.WriteByte(' ')
		b.WriteString(w)
		col += 1 + len(w)
		onLine++
	}
	b.WriteString("\r\n")
	return b.String()
}

// maxWord is the longest word a line of a notice gets whole: a longer one
// (a hostile upstream's reply may have 2,048 characters without a space)
// is split, so that no line exceeds RFC 5322's 998 characters (section
// 2.1.1), which the next hop may refuse or break itself.
const maxWord = 900

// chunks returns words with each longer than maxWord cut into pieces.
func chunks(words []string) []string {
	out := words[:0:0]
	for _, w := range words {
		for len(w) > maxWord {
			n := maxWord
			for n > 0 && !utf8.RuneStart(w[n]) {
				n-- // not inside a UTF-8 character
			}
			out = append(out, w[:n])
			w = w[n:]
		}
		out = append(out, w)
	}
	return out
}
