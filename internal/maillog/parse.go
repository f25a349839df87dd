package maillog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Entry is one parsed mail-log line.
type Entry struct {
	Time   time.Time
	Event  string
	Fields map[string]string
	// Keys is the order the fields came in.
	Keys []string
}

// Get returns a field's value, or "" if it is absent.
func (e *Entry) Get(k string) string { return e.Fields[k] }

// Parse reads one mail-log line, as Logger writes it.
func Parse(line string) (*Entry, error) {
	line = strings.TrimRight(line, "\r\n")
	ts, rest, ok := strings.Cut(line, " ")
	if !ok {
		return nil, errors.New("maillog: no event")
	}
	t, err := time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return nil, fmt.Errorf("maillog: bad time: %w", err)
	}
	ev, rest, _ := strings.Cut(rest, " ")
	if ev == "" {
		return nil, errors.New("maillog: no event")
	}
	if !isWord(ev) {
		return nil, fmt.Errorf("maillog: bad event name %q", trunc(ev))
	}
	e := &Entry{Time: t, Event: ev, Fields: map[string]string{}}
	for rest != "" {
		k, v, ok := strings.Cut(rest, "=")
		if !ok || !isWord(k) {
			return nil, fmt.Errorf("maillog: bad field at %q", trunc(rest))
		}
		v, rest, err = value(v)
		if err != nil {
			return nil, fmt.Errorf("maillog: field %s: %w", k, err)
		}
		if _, dup := e.Fields[k]; !dup {
			e.Keys = append(e.Keys, k)
		}
		e.Fields[k] = v
		rest = strings.TrimPrefix(rest, " ")
	}
	return e, nil
}

// value reads one value from the start of s and returns it and what follows.
func value(s string) (v, rest string, err error) {
	if !strings.HasPrefix(s, `"`) {
		v, rest, _ = strings.Cut(s, " ")
		return v, rest, nil
	}
	// Find the closing quote, skipping escaped characters.
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			v, err := strconv.Unquote(s[:i+1])
			if err != nil {
				return "", "", err
			}
			return v, s[i+1:], nil
		}
	}
	return "", "", errors.New("unterminated quote")
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}
