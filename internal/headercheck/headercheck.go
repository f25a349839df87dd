// Package headercheck applies Postfix header_checks(5) and body_checks
// tables to messages as they are received.
//
// The tables are Postfix's own regexp: and pcre: files, read by package
// table; this package only walks the message and carries out the actions.
// header_checks sees each logical header of the message's primary header
// section, unfolded the way Postfix's cleanup(8) unfolds it (the lines
// joined with "\n", each continuation line keeping its leading
// whitespace); body_checks sees every line after the header section, one
// line at a time. The headers of MIME parts and attached messages are
// checked by header_checks too, as Postfix's mime_header_checks and
// nested_header_checks default to $header_checks (mime.go).
//
// # Invariants and failure behaviour
//
// A Checks is immutable after Open; only the tables behind it change, on
// Reload, and each lookup sees one whole version of a table. Apply is safe
// for concurrent use, also while Reload runs. Every action in a table is
// checked when the table is opened or reloaded, and a table with an
// unknown or malformed action is not put in force: Open fails, Reload
// keeps the version in force and reports the problems as FILE:LINE:
// message. Results that are known only after a match ($1 substitutions)
// are checked when they are used; a bad one is ignored, as Postfix ignores
// it with a warning, and reported in Result.Problems.
//
// Apply streams: it holds one logical header or one body line at a time,
// never the message. Lines longer than one megabyte (and headers whose
// lines add up to more) are passed through unchecked.
package headercheck

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/relaykeeper/relaykeeper/internal/policy"
	"github.com/relaykeeper/relaykeeper/internal/safefile"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

// Checks holds a header_checks table, a body_checks table, or both. The
// zero Checks has neither and passes messages through unchanged.
type Checks struct {
	header *source // nil: no header_checks
	body   *source // nil: no body_checks
}

// source is one opened table and what Reload needs to validate new
// versions before the table puts them in force.
type source struct {
	spec     string
	inHeader bool // header_checks: REPLACE and PREPEND text must be a header
	t        *table.Table

	mu        sync.Mutex  // serialises reload
	okID      os.FileInfo // guarded by mu: the file version last validated
	failedID  os.FileInfo // guarded by mu: the file version that last failed
	failedErr error       // guarded by mu: and its problems
}

// Open opens the header_checks table named by headerSpec and the
// body_checks table named by bodySpec; either may be "" for none. A spec
// is regexp:/path or pcre:/path, as in main.cf (a leading proxy: is
// ignored). Every problem in both files is reported, each as FILE:LINE:
// message, joined with errors.Join: the table package's syntax errors and
// this package's action errors (an unknown action, FILTER without
// transport:destination, REPLACE text that is not a header, ...).
func Open(headerSpec, bodySpec string) (*Checks, error) {
	c := &Checks{}
	var errs []error
	if strings.TrimSpace(headerSpec) != "" {
		s, err := openSource(headerSpec, true)
		c.header = s
		errs = append(errs, keyed("policy.header_checks", err))
	}
	if strings.TrimSpace(bodySpec) != "" {
		s, err := openSource(bodySpec, false)
		c.body = s
		errs = append(errs, keyed("policy.body_checks", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Warnings are the warnings of the tables in force, each FILE:LINE:
// message (table.Table.Warnings): text after if or endif, for instance.
func (c *Checks) Warnings() []string {
	var w []string
	for _, s := range []*source{c.header, c.body} {
		if s != nil {
			w = append(w, s.t.Warnings()...)
		}
	}
	return w
}

// keyed is err, if any, as a problem with the configuration key, so that
// the relay can name the line that set it.
func keyed(key string, err error) error {
	if err == nil {
		return nil
	}
	return &policy.KeyError{Key: key, Err: err}
}

func openSource(spec string, inHeader bool) (*source, error) {
	if err := checkSpec(spec); err != nil {
		return nil, err
	}
	t, terr := table.Open(spec)
	if terr != nil {
		// Report the action problems of the same file too, if it can be
		// read at all: every problem at once.
		if path := specPath(spec); path != "" {
			if data, _, err := readVersion(path); err == nil {
				return nil, errors.Join(terr, validate(path, data, inHeader))
			}
		}
		return nil, terr
	}
	data, id, err := readVersion(t.Path())
	if err != nil {
		return nil, err
	}
	if err := validate(t.Path(), data, inHeader); err != nil {
		return nil, err
	}
	return &source{spec: spec, inHeader: inHeader, t: t, okID: id}, nil
}

// checkSpec accepts regexp: and pcre: files. Other table types would be
// looked up with the whole header as the key, which is never what was
// meant; rules written in the spec itself ({...}) are not supported, since
// their actions could not be named by file and line.
func checkSpec(spec string) error {
	s := strings.TrimSpace(spec)
	for strings.HasPrefix(s, "proxy:") {
		s = s[len("proxy:"):]
	}
	typ, arg, ok := strings.Cut(s, ":")
	if !ok || typ != "regexp" && typ != "pcre" {
		return fmt.Errorf("headercheck: %s: want regexp:/path or pcre:/path", quote(spec))
	}
	if strings.HasPrefix(strings.TrimSpace(arg), "{") {
		return fmt.Errorf("headercheck: %s: rules in the spec are not supported; put them in a file", quote(spec))
	}
	return nil
}

// specPath is the file a spec accepted by checkSpec names.
func specPath(spec string) string {
	s := strings.TrimSpace(spec)
	for strings.HasPrefix(s, "proxy:") {
		s = s[len("proxy:"):]
	}
	_, path, _ := strings.Cut(s, ":")
	return strings.TrimSpace(path)
}

// readVersion reads a file and says which version it read.
func readVersion(path string) ([]byte, os.FileInfo, error) {
	f, err := safefile.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("headercheck: %w", err)
	}
	defer f.Close()
	id, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("headercheck: %w", err)
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("headercheck: %w", err)
	}
	return data, id, nil
}

// Reload re-reads the tables whose files changed. A new version is
// validated first and only then handed to the table's own Reload, which
// parses it and swaps it in; when either finds a problem the version in
// force stays, and Reload returns the problems, again on every call until
// the file changes. Lookups never wait for a reload.
func (c *Checks) Reload() error {
	if c == nil {
		return nil
	}
	var errs []error
	for _, s := range []*source{c.header, c.body} {
		if s != nil {
			errs = append(errs, s.reload())
		}
	}
	return errors.Join(errs...)
}

func (s *source) reload() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	path := s.t.Path()
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("headercheck: %w", err)
	}
	if !sameVersion(fi, s.okID) {
		if sameVersion(fi, s.failedID) {
			return s.failedErr
		}
		data, id, err := readVersion(path)
		if err != nil {
			return err
		}
		if verr := validate(path, data, s.inHeader); verr != nil {
			// Say what else is wrong with the file, without putting it
			// in force: a fresh table is parsed on the side.
			if _, terr := table.Open(s.spec); terr != nil {
				verr = errors.Join(terr, verr)
			}
			s.failedID, s.failedErr = id, verr
			return verr
		}
		s.okID, s.failedID, s.failedErr = id, nil, nil
	}
	_, err = s.t.Reload()
	return err
}

func sameVersion(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) &&
		a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// Verdict is what the checks decided about the message as a whole.
type Verdict int

const (
	// Accept: no action refused, discarded or held the message.
	Accept Verdict = iota
	// Reject: REJECT matched; Result.Code, Enhanced and Text are the
	// reply. A 4.x.x status code makes it a temporary failure (451).
	Reject
	// Discard: DISCARD matched; accept the message and drop it.
	Discard
	// Hold: HOLD matched; accept the message and keep it on hold.
	Hold
)

func (v Verdict) String() string {
	switch v {
	case Accept:
		return "accept"
	case Reject:
		return "reject"
	case Discard:
		return "discard"
	case Hold:
		return "hold"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Result is what Apply found. The log texts name the header or body line
// that matched, as Postfix's cleanup(8) logs them: "header Subject: hi:
// text" or "body some line: text" (the line cut at 200 bytes, control
// characters as spaces).
type Result struct {
	Verdict Verdict
	// Code, Enhanced and Text are the SMTP reply of a Reject: Postfix's
	// 550 5.7.1 "message content rejected", or the table's text with its
	// own RFC 3463 code or 5.7.1 in front; 451 when that code is 4.x.x.
	// For Discard and Hold, Text is the action's optional text (to log).
	Code     int
	Enhanced string
	Text     string
	// Match is the header or body line that decided the Verdict, for the
	// log; "" for Accept.
	Match string

	Filter   string   // FILTER transport:destination; the last one wins
	Redirect string   // REDIRECT user@domain; the only recipient (smtpd)
	BCC      []string // BCC user@domain, each address once; added recipients (smtpd)

	Warnings []string // WARN: the matched line and the optional text
	Info     []string // INFO, PASS and STRIP: the matched line and the text
	// Problems are results that were not valid actions once their $n
	// substitutions were made; they were ignored, as Postfix ignores them
	// with a warning. They belong in the diagnostics log.
	Problems []string
}
