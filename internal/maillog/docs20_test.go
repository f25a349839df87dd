package maillog

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// eventSchema is one row of docs/maillog.md's table of events: its keys in
// order, which of them may be missing, and whether other keys may follow
// ("[...]").
type eventSchema struct {
	keys     []string
	optional map[string]bool
	extras   bool
}

var (
	schemaRow   = regexp.MustCompile("^\\| `([a-z0-9-]+)` \\| ([^|]*) \\|")
	schemaToken = regexp.MustCompile("\\[\\.\\.\\.\\]|\\[|\\]|`([a-z_-]+)`")
	// A mail-log line in a document: an RFC 3339 time, an event, a key;
	// the admin protocol's "EVENT: " before it, a comment's "#" or an
	// inline code span's backquote around it.
	docLogLine = regexp.MustCompile("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(?:\\.\\d+)?Z [a-z0-9-]+ [a-z_]+=[^`]*")
)

// mailLogSchema reads the table of events from docs/maillog.md.
func mailLogSchema(t *testing.T) map[string]eventSchema {
	t.Helper()
	data, err := os.ReadFile("../../docs/maillog.md")
	if err != nil {
		t.Fatal(err)
	}
	schema := map[string]eventSchema{}
	for _, line := range strings.Split(string(data), "\n") {
		m := schemaRow.FindStringSubmatch(line)
		if m == nil || m[1] == "event" {
			continue
		}
		s := eventSchema{optional: map[string]bool{}}
		inBrackets := false
		for _, tok := range schemaToken.FindAllStringSubmatch(m[2], -1) {
			switch tok[0] {
			case "[...]":
				s.extras = true
			case "[":
				inBrackets = true
			case "]":
				inBrackets = false
			default:
				s.keys = append(s.keys, tok[1])
				s.optional[tok[1]] = inBrackets
			}
		}
		schema[m[1]] = s
	}
	if len(schema) < 20 {
		t.Fatalf("docs/maillog.md: read %d events from the table; the table's form changed?", len(schema))
	}
	return schema
}

// check says what is wrong with an entry's keys against the schema: a
// key the table does not list, one out of the table's order, or a
// required one missing.
func (s eventSchema) check(e *Entry) string {
	next := 0
	for _, k := range e.Keys {
		i := slices.Index(s.keys, k)
		switch {
		case i < 0 && s.extras:
			next = len(s.keys)
			continue
		case i < 0:
			return "key " + k + " is not in the table (" + strings.Join(s.keys, " ") + ")"
		case i < next:
			return "key " + k + " out of the table's order (" + strings.Join(s.keys, " ") + ")"
		}
		for _, skipped := range s.keys[next:i] {
			if !s.optional[skipped] {
				return "key " + skipped + " missing before " + k
			}
		}
		next = i + 1
	}
	for _, k := range s.keys[next:] {
		if !s.optional[k] {
			return "key " + k + " missing"
		}
	}
	return ""
}

// TestDocs20LogExamples: every mail-log line shown in the README, docs/
// and the fail2ban filters' comments is one the relay writes: it parses,
// and its event and keys, in order, are those of docs/maillog.md's table,
// which the golden file (written by the Logger's methods) must follow too.
// admin.md's notify example showed a "delivery" line with "rcpt=" and the
// keys in another order, and the fail2ban filter's comment a "ban" line
// with "reason=": a grep or a filter written from them matches nothing.
func TestDocs20LogExamples(t *testing.T) {
	schema := mailLogSchema(t)
	golden, err := os.ReadFile("testdata/events.golden")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(string(golden)), "\n") {
		e, err := Parse(line)
		if err != nil {
			t.Fatalf("golden %q: %v", line, err)
		}
		if e.Event == "would-ban" { // postfix-enforcer's test mode, its own keys
			continue
		}
		s, ok := schema[e.Event]
		if !ok {
			t.Errorf("golden event %q has no row in docs/maillog.md's table", e.Event)
			continue
		}
		if msg := s.check(e); msg != "" {
			t.Errorf("golden %s line: %s\n%s", e.Event, msg, line)
		}
	}

	files, _ := filepath.Glob("../../docs/*.md")
	fail2ban, _ := filepath.Glob("../../etc/fail2ban/filter.d/*.conf")
	files = append(append(files, "../../README.md"), fail2ban...)
	seen := 0
	for _, f := range files {
		if filepath.Base(f) == "postfix-enforcer.md" {
			continue // the companion's action log: its own keys
		}
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for n, line := range strings.Split(string(data), "\n") {
			text := docLogLine.FindString(line)
			if text == "" {
				continue
			}
			seen++
			where := filepath.Base(f) + ":" + strconv.Itoa(n+1)
			e, err := Parse(text)
			if err != nil {
				t.Errorf("%s: %v\n%s", where, err, text)
				continue
			}
			s, ok := schema[e.Event]
			if !ok {
				t.Errorf("%s: event %q is not in docs/maillog.md's table\n%s", where, e.Event, text)
				continue
			}
			if msg := s.check(e); msg != "" {
				t.Errorf("%s: %s: %s\n%s", where, e.Event, msg, text)
			}
		}
	}
	if seen < 10 {
		t.Errorf("found %d mail-log lines in the documents; want the examples of maillog.md, admin.md, auth.md, enforce.md and fail2ban's filters", seen)
	}
}
