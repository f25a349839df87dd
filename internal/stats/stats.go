// Package stats summarises the mail log, in the spirit of pflogsumm: how
// many messages were received, delivered, deferred, bounced, rejected and
// proxied, by hour of the day, who sent the most, which recipient domains
// took the most, and why messages were refused or deferred.
//
// It reads the format of package maillog. Lines that are not mail-log lines
// (the diagnostic log's "time=... level=..." lines, when both streams go to
// one file) are skipped and counted, never an error.
package stats

import (
	"bufio"
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/maillog"
)

// Report is the summary of one or more mail logs. Its JSON form is the
// output of `relaykeeper stats --json`.
type Report struct {
	// First and Last are the times of the first and last mail-log lines.
	First time.Time `json:"first,omitzero"`
	Last  time.Time `json:"last,omitzero"`
	// Lines counts the non-empty lines read; Skipped those that are not
	// mail-log lines; OtherEvents mail-log lines of events not counted
	// here (from a newer relaykeeper).
	Lines       int `json:"lines"`
	Skipped     int `json:"skipped"`
	OtherEvents int `json:"other_events,omitempty"`

	Connections int `json:"connections"`
	// Received counts accept lines: messages committed to the spool.
	Received struct {
		Messages int   `json:"messages"`
		Bytes    int64 `json:"bytes"`
	} `json:"received"`
	// Delivered counts delivery lines with result=sent: recipients, and
	// the distinct messages they belong to.
	Delivered struct {
		Messages   int `json:"messages"`
		Recipients int `json:"recipients"`
	} `json:"delivered"`
	// Deferred counts delivery lines with result=deferred, and the
	// distinct messages deferred at least once.
	Deferred struct {
		Messages  int `json:"messages"`
		Deferrals int `json:"deferrals"`
	} `json:"deferred"`
	// Bounced counts delivery lines with result=bounced: recipients
	// refused for good, and the distinct messages.
	Bounced struct {
		Messages   int `json:"messages"`
		Recipients int `json:"recipients"`
	} `json:"bounced"`
	// Rejected counts reject lines, in all and by stage.
	Rejected struct {
		Total   int            `json:"total"`
		ByStage map[string]int `json:"by_stage"`
	} `json:"rejected"`
	// Proxied counts proxy lines, in all and by result.
	Proxied struct {
		Total    int            `json:"total"`
		ByResult map[string]int `json:"by_result"`
	} `json:"proxied"`
	// Held counts the hold lines (a message held at receipt, or later for
	// its client's ban; held again after a release counts again);
	// Discarded the messages discarded (accepted, then dropped: a
	// filter's or header check's DISCARD).
	Held        int `json:"held"`
	Discarded   int `json:"discarded"`
	Quarantined int `json:"quarantined"`

	// Hours are the counts by hour of the day (UTC, the mail log's time),
	// summed over all days: received messages, deliveries, deferrals and
	// bounces per recipient, rejections.
	Hours [24]Hour `json:"hours"`

	// The top lists, longest first, at most the top asked for.
	Senders          []Sender `json:"senders"`
	RecipientDomains []Domain `json:"recipient_domains"`
	RejectReasons    []Reason `json:"reject_reasons"`
	DeferralReasons  []Reason `json:"deferral_reasons"`
	BounceReasons    []Reason `json:"bounce_reasons"`

	// RejectionRates are the upstream's refusals per client and per hour
	// (Client "*" is the whole relay), for the hours with any refusal,
	// the latest first; Alert marks a rate over DefaultThreshold.
	RejectionRates []ClientRate `json:"rejection_rates"`
}

// Hour is one hour of the day's traffic.
type Hour struct {
	// Hour is the hour of the day, 0 to 23: Received etc. count from
	// HH:00:00 to HH:59:59.
	Hour      int `json:"hour"`
	Received  int `json:"received"`
	Delivered int `json:"delivered"`
	Deferred  int `json:"deferred"`
	Bounced   int `json:"bounced"`
	Rejected  int `json:"rejected"`
}

// Sender is one envelope sender's accepted messages; "<>" is the null sender.
type Sender struct {
	Sender   string `json:"sender"`
	Messages int    `json:"messages"`
	Bytes    int64  `json:"bytes"`
}

// Domain is one recipient domain's delivery results, per recipient, and
// the delays (seconds from arrival) of its successful deliveries.
type Domain struct {
	Domain   string  `json:"domain"`
	Sent     int     `json:"sent"`
	Deferred int     `json:"deferred"`
	Bounced  int     `json:"bounced"`
	AvgDelay float64 `json:"avg_delay"`
	MaxDelay float64 `json:"max_delay"`
}

// Reason is one normalised reply text (see NormaliseReply) and how often
// it was given.
type Reason struct {
	Reason string `json:"reason"`
	Count  int    `json:"count"`
}

// Aggregator collects mail-log lines, from any number of files in turn.
// The zero value is not ready; use NewAggregator.
type Aggregator struct {
	r         Report
	delivered map[string]bool // message ids, for counting messages
	deferred  map[string]bool
	bounced   map[string]bool
	senders   map[string]*Sender
	domains   map[string]*domainAcc
	rejects   map[string]int
	deferrals map[string]int
	bounces   map[string]int
	rates     Rates
}

type domainAcc struct {
	Domain
	delaySum float64
}

// NewAggregator returns an empty Aggregator.
func NewAggregator() *Aggregator {
	a := &Aggregator{
		delivered: map[string]bool{},
		deferred:  map[string]bool{},
		bounced:   map[string]bool{},
		senders:   map[string]*Sender{},
		domains:   map[string]*domainAcc{},
		rejects:   map[string]int{},
		deferrals: map[string]int{},
		bounces:   map[string]int{},
	}
	a.r.Rejected.ByStage = map[string]int{}
	a.r.Proxied.ByResult = map[string]int{}
	return a
}

// maxLine bounds a line; a longer one is skipped, not an error, so that a
// corrupt log cannot stop the report or exhaust memory.
const maxLine = 1 << 20

// Read adds every line of r.
func (a *Aggregator) Read(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	var long []byte
	tooLong := false
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			if !tooLong && len(long)+len(chunk) <= maxLine {
				long = append(long, chunk...)
			} else {
				tooLong, long = true, long[:0]
			}
			continue
		case err != nil && !errors.Is(err, io.EOF):
			return fmt.Errorf("stats: %w", err)
		}
		line := chunk
		if len(long) > 0 {
			line = append(long, chunk...)
		}
		if tooLong || len(line) > maxLine {
			a.r.Lines++
			a.r.Skipped++
		} else {
			a.Line(string(line))
		}
		long, tooLong = long[:0], false
		if err != nil {
			return nil
		}
	}
}

// Line adds one line.
func (a *Aggregator) Line(line string) {
	line = strings.TrimRight(line, "\r\n")
	if len(bytes.TrimSpace([]byte(line))) == 0 {
		return
	}
	a.r.Lines++
	if l, ok := maillog.FromSyslogLine(line); ok { // /var/log/mail.log, journalctl
		line = l
	}
	if l, ok := maillog.FromJSONLine(line); ok { // --log-format json
		line = l
	}
	e, err := maillog.Parse(line)
	if err != nil {
		a.r.Skipped++
		return
	}
	t := e.Time.UTC()
	if a.r.First.IsZero() || t.Before(a.r.First) {
		a.r.First = t
	}
	if t.After(a.r.Last) {
		a.r.Last = t
	}
	h := &a.r.Hours[t.Hour()]
	id := e.Get("id")
	switch e.Event {
	case "connect":
		a.r.Connections++
	case "disconnect":
	case "accept":
		a.r.Received.Messages++
		h.Received++
		size := logSize(e.Get("size"))
		a.r.Received.Bytes = addBytes(a.r.Received.Bytes, size)
		from := mailbox(e.Get("from"))
		s := a.senders[from]
		if s == nil {
			s = &Sender{Sender: from}
			a.senders[from] = s
		}
		s.Messages++
		s.Bytes = addBytes(s.Bytes, size)
	case "delivery":
		a.rate(t, e)
		d := a.domain(e.Get("to"))
		switch e.Get("result") {
		case "sent":
			a.r.Delivered.Recipients++
			a.delivered[id] = true
			h.Delivered++
			d.Sent++
			if delay, ok := logDelay(e.Get("delay")); ok {
				d.delaySum += delay
				d.MaxDelay = max(d.MaxDelay, delay)
			}
		case "deferred":
			a.r.Deferred.Deferrals++
			a.deferred[id] = true
			h.Deferred++
			d.Deferred++
			a.deferrals[NormaliseReply(e.Get("reply"))]++
		case "bounced":
			a.r.Bounced.Recipients++
			a.bounced[id] = true
			h.Bounced++
			d.Bounced++
			a.bounces[NormaliseReply(e.Get("reply"))]++
		}
	case "reject":
		if RelayedRefusal(e.Get) {
			a.rate(t, e)
		}
		a.r.Rejected.Total++
		a.r.Rejected.ByStage[e.Get("stage")]++
		h.Rejected++
		a.rejects[NormaliseReply(e.Get("reply"))]++
	case "proxy":
		a.rate(t, e)
		res := e.Get("result")
		a.r.Proxied.Total++
		a.r.Proxied.ByResult[res]++
		switch res {
		case "deferred":
			a.deferrals[NormaliseReply(e.Get("reply"))]++
		case "bounced":
			a.bounces[NormaliseReply(e.Get("reply"))]++
		}
	case "hold":
		a.r.Held++
	case "discard":
		a.r.Discarded++
	case "quarantine":
		a.r.Quarantined++
	default:
		a.r.OtherEvents++
	}
}

// rate counts an upstream reply in the rejection rates: a proxy line's
// once per recipient (nrcpt), as a stored message's delivery lines count.
func (a *Aggregator) rate(t time.Time, e *maillog.Entry) {
	if refused, ok := UpstreamRefusal(e.Get("reply")); ok {
		n := 1
		if e.Event == "proxy" {
			n, _ = strconv.Atoi(e.Get("nrcpt"))
			n = min(n, maxNrcpt)
		}
		a.rates.AddN(t, ClientIP(e.Get("client")), refused, n)
	}
}

// A mail log is text anyone with write access to it (or a syslog daemon
// that cut a line) may have garbled, so the numbers read from it are
// bounded: a reply counted for more recipients than maxNrcpt, a delay
// that is not a number of seconds up to maxDelay, or a size that is
// negative, would make the sums wrap or the report's JSON fail ("json:
// unsupported value: NaN").
const (
	maxNrcpt = 1 << 20
	maxDelay = 1e9 // seconds, some 31 years
)

// logSize reads a size= field: a count of bytes, or 0 if it is none.
func logSize(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// addBytes is a+b for two non-negative counts, stopping at the largest
// int64 rather than wrapping.
func addBytes(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// logDelay reads a delay= field, seconds from arrival.
func logDelay(s string) (float64, bool) {
	d, err := strconv.ParseFloat(s, 64)
	if err != nil || !(d >= 0 && d <= maxDelay) { // also false for NaN
		return 0, false
	}
	return d, true
}

func (a *Aggregator) domain(to string) *domainAcc {
	dom := "(none)"
	if _, d, ok := strings.Cut(mailbox(to), "@"); ok && d != "" {
		dom = d
	}
	acc := a.domains[dom]
	if acc == nil {
		acc = &domainAcc{Domain: Domain{Domain: dom}}
		a.domains[dom] = acc
	}
	return acc
}

// mailbox turns a logged address into the form the report shows: without
// angle brackets, its domain in lower case; "<>" for the null sender.
func mailbox(a string) string {
	a = strings.TrimSuffix(strings.TrimPrefix(a, "<"), ">")
	if a == "" {
		return "<>"
	}
	if i := strings.LastIndexByte(a, '@'); i >= 0 {
		a = a[:i+1] + strings.ToLower(a[i+1:])
	}
	return a
}

// Report returns the summary of what was read so far, with at most top
// entries in each top list (all of them if top <= 0).
func (a *Aggregator) Report(top int) *Report {
	r := a.r
	for i := range r.Hours {
		r.Hours[i].Hour = i
	}
	r.Rejected.ByStage = clone(a.r.Rejected.ByStage)
	r.Proxied.ByResult = clone(a.r.Proxied.ByResult)
	r.Delivered.Messages = len(a.delivered)
	r.Deferred.Messages = len(a.deferred)
	r.Bounced.Messages = len(a.bounced)

	r.Senders = []Sender{}
	for _, s := range a.senders {
		r.Senders = append(r.Senders, *s)
	}
	slices.SortFunc(r.Senders, func(x, y Sender) int {
		return cmp.Or(cmp.Compare(y.Messages, x.Messages), cmp.Compare(y.Bytes, x.Bytes), cmp.Compare(x.Sender, y.Sender))
	})
	r.Senders = limit(r.Senders, top)

	r.RecipientDomains = []Domain{}
	for _, d := range a.domains {
		dd := d.Domain
		if dd.Sent > 0 {
			dd.AvgDelay = d.delaySum / float64(dd.Sent)
		}
		r.RecipientDomains = append(r.RecipientDomains, dd)
	}
	slices.SortFunc(r.RecipientDomains, func(x, y Domain) int {
		return cmp.Or(cmp.Compare(y.Sent+y.Deferred+y.Bounced, x.Sent+x.Deferred+x.Bounced),
			cmp.Compare(y.Sent, x.Sent), cmp.Compare(x.Domain, y.Domain))
	})
	r.RecipientDomains = limit(r.RecipientDomains, top)

	r.RejectReasons = reasons(a.rejects, top)
	r.DeferralReasons = reasons(a.deferrals, top)
	r.BounceReasons = reasons(a.bounces, top)
	r.RejectionRates = []ClientRate{}
	for _, cr := range a.rates.List(time.Time{}) {
		if cr.Refused > 0 {
			r.RejectionRates = append(r.RejectionRates, cr)
		}
	}
	return &r
}

func clone(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func limit[T any](s []T, top int) []T {
	if top > 0 && len(s) > top {
		return s[:top]
	}
	return s
}

func reasons(m map[string]int, top int) []Reason {
	out := []Reason{}
	for k, v := range m {
		out = append(out, Reason{Reason: k, Count: v})
	}
	slices.SortFunc(out, func(x, y Reason) int {
		return cmp.Or(cmp.Compare(y.Count, x.Count), cmp.Compare(x.Reason, y.Reason))
	})
	return limit(out, top)
}

// Aggregate reads one mail log and returns its summary, with at most top
// entries in each top list.
func Aggregate(r io.Reader, top int) (*Report, error) {
	a := NewAggregator()
	if err := a.Read(r); err != nil {
		return nil, err
	}
	return a.Report(top), nil
}
