package metrics

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/spool"
)

// Queue is the spool as the queue's gauges read it. *spool.Spool
// implements it.
type Queue interface {
	List() ([]spool.Entry, error)
	ContentSize(id string) (int64, error)
}

// Quarantine is the spool's quarantine, counted when the Queue has one.
// *spool.Spool implements it.
type Quarantine interface {
	QuarantineCount() (int, error)
}

// BanList is the enforcer's bans. *enforce.Bans implements it.
type BanList interface {
	List() []enforce.BanEntry
}

// BlockList is the sender domains the enforcer has blocked.
type BlockList interface {
	BlockedDomains() ([]enforce.BlockedDomain, error)
}

// SessionCounter counts the SMTP sessions open now.
type SessionCounter interface {
	Sessions() int
}

var (
	queueMessagesDesc = prometheus.NewDesc("relaykeeper_queue_messages",
		"Messages in the spool, by state (new, ready, claimed, failed, held).", []string{"state"}, nil)
	queueOldestDesc = prometheus.NewDesc("relaykeeper_queue_oldest_message_age_seconds",
		"Age of the oldest message in each state.", []string{"state"}, nil)
	// Not "le": Prometheus keeps that label for histograms' buckets, and
	// promtool check metrics refuses it on a gauge.
	queueAgeDesc = prometheus.NewDesc("relaykeeper_queue_messages_by_age",
		"Messages in the spool by state and age: younger than max_age_seconds.", []string{"state", "max_age_seconds"}, nil)
	quarantinedDesc = prometheus.NewDesc("relaykeeper_queue_quarantined_messages",
		"Messages recovery set aside in the spool's quarantine (relaykeeper queue quarantine).", nil, nil)
	spoolBytesDesc = prometheus.NewDesc("relaykeeper_spool_bytes",
		"Bytes of message content in the spool.", nil, nil)
	bansDesc = prometheus.NewDesc("relaykeeper_bans_active",
		"Bans in force now, each of a client address or a network (an IPv6 client's /64).", nil, nil)
	blocksDesc = prometheus.NewDesc("relaykeeper_blocked_domains",
		"Sender domains blocked in the enforcer's access table.", nil, nil)
	sessionsDesc = prometheus.NewDesc("relaykeeper_smtp_sessions_open",
		"SMTP sessions open now.", nil, nil)
)

// ageBounds are the queue age buckets, in seconds: 5 minutes to 5 days.
var ageBounds = []float64{300, 3600, 4 * 3600, 24 * 3600, 5 * 24 * 3600}

var states = []spool.State{spool.New, spool.Ready, spool.Claimed, spool.Failed, spool.Held}

// stateCollector reads what is a state rather than an event, at each
// scrape.
type stateCollector struct {
	opts Options
	now  func() time.Time
}

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueMessagesDesc, queueOldestDesc, queueAgeDesc, quarantinedDesc, spoolBytesDesc,
		bansDesc, blocksDesc, sessionsDesc} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	if c.now != nil {
		now = c.now()
	}
	if q := c.opts.Queue; q != nil {
		if ents, err := q.List(); err == nil {
			collectQueue(ch, q, ents, now)
		}
		// A message recovery set aside was acknowledged with 250 (or its
		// client may think so): nothing delivers it until an administrator
		// looks, so monitoring must be able to see it.
		if qq, ok := q.(Quarantine); ok {
			if n, err := qq.QuarantineCount(); err == nil {
				ch <- prometheus.MustNewConstMetric(quarantinedDesc, prometheus.GaugeValue, float64(n))
			}
		}
	}
	if b := c.opts.Bans; b != nil {
		n := 0
		for _, ban := range b.List() {
			if ban.Active(now) {
				n++
			}
		}
		ch <- prometheus.MustNewConstMetric(bansDesc, prometheus.GaugeValue, float64(n))
	}
	if b := c.opts.Blocks; b != nil {
		if ds, err := b.BlockedDomains(); err == nil {
			ch <- prometheus.MustNewConstMetric(blocksDesc, prometheus.GaugeValue, float64(len(ds)))
		}
	}
	if s := c.opts.Sessions; s != nil {
		ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(s.Sessions()))
	}
}

func collectQueue(ch chan<- prometheus.Metric, q Queue, ents []spool.Entry, now time.Time) {
	count := map[spool.State]int{}
	oldest := map[spool.State]float64{}
	byAge := map[spool.State][]int{}
	var bytes int64
	for _, e := range ents {
		count[e.State]++
		age := IDAge(e.ID, now).Seconds()
		oldest[e.State] = max(oldest[e.State], age)
		if byAge[e.State] == nil {
			byAge[e.State] = make([]int, len(ageBounds))
		}
		for i, b := range ageBounds {
			if age < b {
				byAge[e.State][i]++
			}
		}
		if n, err := q.ContentSize(e.ID); err == nil {
			bytes += n
		}
	}
	for _, st := range states {
		name := st.String()
		ch <- prometheus.MustNewConstMetric(queueMessagesDesc, prometheus.GaugeValue, float64(count[st]), name)
		ch <- prometheus.MustNewConstMetric(queueOldestDesc, prometheus.GaugeValue, oldest[st], name)
		for i, b := range ageBounds {
			n := 0
			if byAge[st] != nil {
				n = byAge[st][i]
			}
			ch <- prometheus.MustNewConstMetric(queueAgeDesc, prometheus.GaugeValue, float64(n), name,
				strconv.FormatFloat(b, 'f', -1, 64))
		}
	}
	ch <- prometheus.MustNewConstMetric(spoolBytesDesc, prometheus.GaugeValue, float64(bytes))
}

// IDAge is how long ago a message arrived, from its id: relaykeeper's, or
// the file name E-MailRelay gave it (a migrated spool's backlog is as old
// as queue list says, not new). It reads no file: a scrape lists the
// whole spool.
func IDAge(id string, now time.Time) time.Duration {
	t, ok := spool.IDTime(id)
	if !ok {
		t, ok = spool.EmailRelayIDTime(id)
	}
	if !ok {
		return 0
	}
	return max(now.Sub(t), 0)
}
