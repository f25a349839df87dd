package stats

import (
	"cmp"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Threshold says when an upstream rejection rate calls for an alert: at
// least Min replies in the hour, of which more than Rate were refusals.
// Gmail's own line is a 0.3% spam rate; refusals come well before it, so an
// alert at 2% leaves time to act before the relay as a whole is blocked.
type Threshold struct {
	Rate float64 `json:"rate"`
	Min  int     `json:"min"`
}

// DefaultThreshold is 2% of at least 20 replies in an hour.
var DefaultThreshold = Threshold{Rate: 0.02, Min: 20}

// Crossed reports whether refused of replies is over t.
func (t Threshold) Crossed(replies, refused int) bool {
	return replies >= t.Min && replies > 0 && float64(refused)/float64(replies) > t.Rate
}

// RelayClient is the Client of the whole relay's rate.
const RelayClient = "*"

// ClientRate is the upstream's answers to one client's mail (or, for
// RelayClient, to all of it) in one clock hour.
type ClientRate struct {
	Client string    `json:"client"`
	Hour   time.Time `json:"hour"`
	// Replies are the upstream's answers to delivery attempts, one per
	// recipient; Refused those with a 4xx or 5xx code.
	Replies int     `json:"replies"`
	Refused int     `json:"refused"`
	Rate    float64 `json:"rate"`
	// Alert is set when the rate is over the threshold.
	Alert bool `json:"alert,omitempty"`
}

// UpstreamRefusal reads the reply logged with a delivery: ok says whether
// it is the upstream's verdict on the mail at all, refused whether it was a
// 4xx or 5xx. A reply needs a 3-digit code first; one with an enhanced
// status code of the network and routing class (X.4.Y, RFC 3463: no
// answer, a bad connection, a routing loop) is not a verdict on the mail,
// and the relay writes such replies itself when the upstream cannot be
// reached ("451 4.4.1 upstream connect failed"), so a smarthost that is
// down does not look like one that refuses.
func UpstreamRefusal(reply string) (refused, ok bool) {
	if len(reply) < 3 {
		return false, false
	}
	code, err := strconv.Atoi(reply[:3])
	if err != nil || code < 200 || code > 599 || (len(reply) > 3 && reply[3] != ' ' && reply[3] != '-') {
		return false, false
	}
	if f := strings.Fields(reply[min(4, len(reply)):]); len(f) > 0 {
		if class, rest, ok := strings.Cut(f[0], "."); ok && len(class) == 1 && strings.HasPrefix(rest, "4.") {
			return false, false
		}
	}
	return code >= 400, true
}

// RelayedRefusal reports whether a reject line, read through get, is the
// upstream's own refusal of the client's mail at MAIL or RCPT that a proxy
// passed on to its client (the line names the upstream as relay). Such a
// reply counts in the rejection rates as the same refusal does when the
// relay delivers from its spool; the relay's own refusals do not.
func RelayedRefusal(get func(string) string) bool { return get("relay") != "" }

// ClientIP turns a logged client ("ip:port", "[ip]:port" or "ip") into the
// IP, so that one client's connections count together.
func ClientIP(client string) string {
	if h, _, err := net.SplitHostPort(client); err == nil {
		return h
	}
	return strings.Trim(client, "[]")
}

// maxRateClients bounds the clients kept per hour; beyond it, clients count
// together as "other", so that a flood of clients cannot exhaust memory.
const maxRateClients = 10000

// Rates counts upstream replies per client and per clock hour, and for the
// whole relay. It is safe for concurrent use; the zero value is ready, with
// DefaultThreshold. Keep bounds what a live relay remembers: hours older
// than that are dropped (0 keeps everything, as for a log file).
type Rates struct {
	Threshold Threshold // zero means DefaultThreshold
	Keep      time.Duration

	mu    sync.Mutex // guards hours
	hours map[time.Time]map[string]*ClientRate
}

func (r *Rates) threshold() Threshold {
	if r.Threshold == (Threshold{}) {
		return DefaultThreshold
	}
	return r.Threshold
}

// Add counts one reply at t to client's mail. It returns the rates that
// this reply made cross the threshold, the client's or the relay's or both,
// each once per hour: the caller alerts on them.
func (r *Rates) Add(t time.Time, client string, refused bool) []ClientRate {
	return r.AddN(t, client, refused, 1)
}

// AddN is Add for a reply that answered for n recipients: a proxy's reply
// to a message's content counts as many replies as the message had
// recipients, as the delivery lines of a stored message do.
func (r *Rates) AddN(t time.Time, client string, refused bool, n int) []ClientRate {
	n = max(n, 1)
	hour := t.UTC().Truncate(time.Hour)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hours == nil {
		r.hours = map[time.Time]map[string]*ClientRate{}
	}
	if r.Keep > 0 {
		for h := range r.hours {
			if hour.Sub(h) > r.Keep {
				delete(r.hours, h)
			}
		}
	}
	m := r.hours[hour]
	if m == nil {
		m = map[string]*ClientRate{}
		r.hours[hour] = m
	}
	if _, ok := m[client]; !ok && len(m) >= maxRateClients {
		client = "other"
	}
	var crossed []ClientRate
	th := r.threshold()
	for _, c := range []string{client, RelayClient} {
		cr := m[c]
		if cr == nil {
			cr = &ClientRate{Client: c, Hour: hour}
			m[c] = cr
		}
		cr.Replies += n
		if refused {
			cr.Refused += n
		}
		cr.Rate = float64(cr.Refused) / float64(cr.Replies)
		if !cr.Alert && th.Crossed(cr.Replies, cr.Refused) {
			cr.Alert = true
			crossed = append(crossed, *cr)
		}
	}
	return crossed
}

// List returns the rates of the hours since since (all if zero), the
// relay's first in each hour, then the clients by falling rate; the most
// recent hour comes first.
func (r *Rates) List(since time.Time) []ClientRate {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := []ClientRate{}
	for h, m := range r.hours {
		if h.Add(time.Hour).Before(since) {
			continue
		}
		for _, cr := range m {
			out = append(out, *cr)
		}
	}
	slices.SortFunc(out, func(x, y ClientRate) int {
		return cmp.Or(y.Hour.Compare(x.Hour), cmp.Compare(boolInt(y.Client == RelayClient), boolInt(x.Client == RelayClient)),
			cmp.Compare(y.Rate, x.Rate), cmp.Compare(y.Replies, x.Replies), cmp.Compare(x.Client, y.Client))
	})
	return out
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
