package companion

import (
	"sort"
	"strings"
	"time"
)

// actedSet is what was done, by queue id and then the plan's key, and
// when. A refusal looks up its own queue id's keys: scanning every action
// remembered (up to maxActed, over actedTTL) took 54 ms a refusal with
// 100 000 of them, and the enforcer fell behind the log in a spam wave.
// The state file holds it flat, "QUEUEID KEY" (flat, fromFlat).
type actedSet map[string]map[string]time.Time

func (s actedSet) set(id, key string, t time.Time) {
	m := s[id]
	if m == nil {
		m = map[string]time.Time{}
		s[id] = m
	}
	m[key] = t
}

func (s actedSet) get(id, key string) (time.Time, bool) {
	t, ok := s[id][key]
	return t, ok
}

// keys returns the keys acted on for queue id.
func (s actedSet) keys(id string) []string {
	var ks []string
	for k := range s[id] {
		ks = append(ks, k)
	}
	return ks
}

// prune forgets what was done before cutoff, and the oldest beyond max.
func (s actedSet) prune(cutoff time.Time, max int) {
	type entry struct {
		id, key string
		at      time.Time
	}
	var all []entry
	for id, m := range s {
		for k, t := range m {
			if t.Before(cutoff) {
				delete(m, k)
			} else {
				all = append(all, entry{id, k, t})
			}
		}
		if len(m) == 0 {
			delete(s, id)
		}
	}
	if over := len(all) - max; over > 0 {
		sort.Slice(all, func(i, j int) bool { return all[i].at.Before(all[j].at) })
		for _, e := range all[:over] {
			if delete(s[e.id], e.key); len(s[e.id]) == 0 {
				delete(s, e.id)
			}
		}
	}
}

// flat is the set as the state file holds it: "QUEUEID KEY" to when.
func (s actedSet) flat() map[string]time.Time {
	out := map[string]time.Time{}
	for id, m := range s {
		for k, t := range m {
			out[id+" "+k] = t
		}
	}
	return out
}

// fromFlat reads what flat wrote.
func fromFlat(flat map[string]time.Time) actedSet {
	s := actedSet{}
	for k, t := range flat {
		if id, key, ok := strings.Cut(k, " "); ok {
			s.set(id, key, t)
		}
	}
	return s
}
