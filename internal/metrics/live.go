package metrics

import (
	"strings"
	"sync"
	"time"
)

// activityMinutes is how far back the per-minute counts go: six hours.
const activityMinutes = 6 * 60

// Minute is the traffic of one minute, for the dashboard's plot.
type Minute struct {
	Time      time.Time `json:"time"`
	Accepted  int       `json:"accepted"`
	Delivered int       `json:"delivered"`
	Deferred  int       `json:"deferred"`
	Bounced   int       `json:"bounced"`
	Rejected  int       `json:"rejected"`
}

// count counts n recipients with the result.
func (c *Minute) count(result string, n int) {
	switch result {
	case "sent":
		c.Delivered += n
	case "deferred":
		c.Deferred += n
	case "bounced":
		c.Bounced += n
	}
}

// activity is a ring of per-minute counts.
type activity struct {
	mu      sync.Mutex // guards minutes
	minutes [activityMinutes]Minute
}

func (a *activity) add(t time.Time, f func(*Minute)) {
	t = t.UTC().Truncate(time.Minute)
	a.mu.Lock()
	defer a.mu.Unlock()
	c := &a.minutes[(t.Unix()/60)%activityMinutes]
	if !c.Time.Equal(t) {
		*c = Minute{Time: t}
	}
	f(c)
}

// Activity returns the counts of every minute of the last hours up to now,
// oldest first, with zeros for quiet minutes.
func (m *Metrics) Activity(now time.Time, minutes int) []Minute {
	minutes = min(max(minutes, 1), activityMinutes)
	end := now.UTC().Truncate(time.Minute)
	out := make([]Minute, minutes)
	m.activity.mu.Lock()
	defer m.activity.mu.Unlock()
	for i := range out {
		t := end.Add(time.Duration(i-minutes+1) * time.Minute)
		c := m.activity.minutes[(t.Unix()/60)%activityMinutes]
		if !c.Time.Equal(t) {
			c = Minute{Time: t}
		}
		out[i] = c
	}
	return out
}

// Field is one key=value of a mail-log event, in the log's order.
type Field struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// Action is one mail-log event the dashboard lists among the enforcer's
// actions; its fields include the upstream's reply where the event has one.
type Action struct {
	Time   time.Time `json:"time"`
	Event  string    `json:"event"`
	Fields []Field   `json:"fields"`
}

func (a Action) text() string {
	var b strings.Builder
	for i, f := range a.Fields {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(f.Key + "=" + f.Value)
	}
	return b.String()
}

// Alert is one alert: a rejection rate over the threshold, or the relay's
// own fault as the enforcer logged it.
type Alert struct {
	Time  time.Time `json:"time"`
	Cause string    `json:"cause"`
	Text  string    `json:"text"`
}

// ring keeps the latest max items.
type ring[T any] struct {
	mu    sync.Mutex // guards items
	max   int
	items []T
}

func (r *ring[T]) add(v T) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.items) >= r.max {
		r.items = append(r.items[:0], r.items[1:]...)
	}
	r.items = append(r.items, v)
}

// list returns the items newest first.
func (r *ring[T]) list() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]T, len(r.items))
	for i, v := range r.items {
		out[len(out)-1-i] = v
	}
	return out
}
