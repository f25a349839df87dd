package metrics

import (
	"cmp"
	"slices"
	"strconv"
	"sync"
	"time"
)

// maxPaces bounds the paces kept: a paced recipient is a key of its own,
// and its "resume" line may never come if the relay restarts.
const maxPaces = 1000

// Pace is one destination's current pace as the scheduler logged it last
// (the mail log's pace lines); a "resume" line ends it.
type Pace struct {
	Destination string    `json:"destination"`
	Verdict     string    `json:"verdict"`
	Since       time.Time `json:"since"`
	Until       time.Time `json:"until,omitzero"`
	Delay       float64   `json:"delay_seconds"`
	Concurrency int       `json:"concurrency"`
	Reply       string    `json:"reply"`
}

// paces is the latest pace per destination.
type paces struct {
	mu sync.Mutex // guards m
	m  map[string]Pace
}

func (p *paces) observe(t time.Time, get func(string) string) {
	dest := get("destination")
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil {
		p.m = map[string]Pace{}
	}
	if get("verdict") == "resume" {
		delete(p.m, dest)
		return
	}
	if _, ok := p.m[dest]; !ok && len(p.m) >= maxPaces {
		return
	}
	pc := Pace{Destination: dest, Verdict: get("verdict"), Since: t.UTC(), Reply: get("reply")}
	pc.Until, _ = time.Parse(time.RFC3339, get("until"))
	if d, err := time.ParseDuration(get("delay")); err == nil {
		pc.Delay = d.Seconds()
	}
	pc.Concurrency, _ = strconv.Atoi(get("concurrency"))
	p.m[dest] = pc
}

// Paces returns the destinations paced now, by destination.
func (m *Metrics) Paces() []Pace {
	m.paces.mu.Lock()
	defer m.paces.mu.Unlock()
	out := make([]Pace, 0, len(m.paces.m))
	for _, p := range m.paces.m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b Pace) int { return cmp.Compare(a.Destination, b.Destination) })
	return out
}
