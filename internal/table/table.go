package table

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

// Table is one lookup table opened from a Postfix table spec. Lookups are
// safe for concurrent use, also while Reload runs: they see either the old
// or the new contents, never a mix.
type Table struct {
	spec string
	typ  string // the Postfix type, "" for a bare path; "proxy:" removed
	path string // the file read, "" for static: and inline specs
	arg  string // what follows "TYPE:" for specs without a file

	cur atomic.Pointer[contents]

	mu        sync.Mutex  // serialises Reload
	failedID  os.FileInfo // guarded by mu: the file version that last failed to parse
	failedErr error       // guarded by mu: and its errors
}

// kind is how a table answers lookups.
type kind int

const (
	kindFixed  kind = iota // hash-like and inline: exact keys, lower-cased
	kindRegexp             // regexp: and pcre:
	kindCIDR               // cidr:
	kindStatic             // static:
)

// contents is one parsed version of a table; it is never modified after
// it has been published.
type contents struct {
	kind     kind
	fixed    map[string]entry
	re       *reTable
	cidr     *cidrTable
	static   string
	warnings []string
	id       os.FileInfo // the file version parsed; nil without a file
}

// textTypes are the Postfix types whose source is a postmap(1) text file:
// the indexed database is never read, its source is.
var textTypes = map[string]bool{
	"": true, "hash": true, "btree": true, "lmdb": true, "texthash": true,
	"cdb": true, "dbm": true, "sdbm": true,
}

// Open opens the table named by spec: TYPE:PATH or a bare path. See the
// package documentation for the types. Every problem in the file is
// reported, each as FILE:LINE: message (see ParseError), joined with
// errors.Join.
func Open(spec string) (*Table, error) {
	typ, arg, err := splitSpec(spec)
	if err != nil {
		return nil, err
	}
	t := &Table{spec: strings.TrimSpace(spec), typ: typ}
	switch {
	case textTypes[typ], typ == "regexp", typ == "pcre", typ == "cidr":
		if typ != "" && typ != "texthash" && textTypes[typ] {
			// Postfix would read PATH.db (or .lmdb, .cdb); a path that
			// names the index itself is a common slip.
			for _, ext := range []string{".db", ".lmdb", ".cdb", ".dir", ".pag"} {
				if strings.HasSuffix(arg, ext) {
					return nil, fmt.Errorf("table: %s: give the text file that postmap reads, not the %s index", clipPath(spec), ext)
				}
			}
		}
		if strings.HasPrefix(arg, "{") && !textTypes[typ] {
			t.arg = arg // regexp:{ {rule}, ... }
			break
		}
		if arg == "" {
			return nil, fmt.Errorf("table: %q: missing file name", spec)
		}
		t.path = filepath.Clean(arg)
	case typ == "static", typ == "inline":
		t.arg = arg
	default:
		return nil, fmt.Errorf("table: %q: unsupported table type %q; want hash, btree, lmdb, cdb, dbm, sdbm, texthash, cidr, regexp, pcre, static or inline", spec, typ)
	}
	c, _, err := t.load()
	if err != nil {
		return nil, err
	}
	t.cur.Store(c)
	return t, nil
}

// splitSpec splits TYPE:ARG; a spec without a type prefix is a bare path.
// "proxy:" is removed: proxymap(8) serves the same table.
func splitSpec(spec string) (typ, arg string, err error) {
	s := strings.TrimSpace(spec)
	for {
		if s == "" {
			return "", "", fmt.Errorf("table: empty table spec %q", spec)
		}
		i := strings.IndexByte(s, ':')
		if i <= 0 || !isTypeName(s[:i]) {
			return "", s, nil
		}
		typ, s = s[:i], s[i+1:]
		if typ != "proxy" {
			return typ, s, nil
		}
	}
}

func isTypeName(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || i > 0 && (c >= '0' && c <= '9' || c == '_')) {
			return false
		}
	}
	return true
}

// load reads and parses the table. It returns the file version it read
// even when parsing fails, so that Reload can remember the failure.
func (t *Table) load() (*contents, os.FileInfo, error) {
	if t.path == "" {
		return t.parseSpecText()
	}
	f, err := safefile.Open(t.path)
	if err != nil {
		return nil, nil, pathError(err)
	}
	defer f.Close()
	id, err := f.Stat()
	if err != nil {
		return nil, nil, pathError(err)
	}
	if id.IsDir() {
		return nil, id, fmt.Errorf("table: %s is a directory", clipPath(t.path))
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return nil, id, pathError(err)
	}
	c, err := parseContents(t.typ, t.path, data)
	if c != nil {
		c.id = id
	}
	return c, id, err
}

// parseContents parses a table file of the given type.
func parseContents(typ, file string, data []byte) (*contents, error) {
	p := &problems{file: file}
	if !checkBinary(p, data) {
		return nil, errors.Join(p.errs...)
	}
	c := &contents{}
	switch typ {
	case "regexp", "pcre":
		c.kind = kindRegexp
		c.re = parseRegexp(p, logicalLines(p, string(data)), dialectOf(typ))
	case "cidr":
		c.kind = kindCIDR
		c.cidr = parseCIDR(p, logicalLines(p, string(data)))
	default:
		c.kind = kindFixed
		c.fixed = parseText(p, string(data))
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	c.warnings = p.warnings
	return c, nil
}

func dialectOf(typ string) dialect {
	if typ == "pcre" {
		return pcreRE
	}
	return posixRE
}

// parseSpecText parses the tables written in the spec itself: static:,
// inline:, and regexp:, pcre: or cidr: with rules in braces.
func (t *Table) parseSpecText() (*contents, os.FileInfo, error) {
	p := &problems{file: t.spec}
	c := &contents{}
	switch t.typ {
	case "static":
		c.kind = kindStatic
		c.static = t.arg
		if inner, ok := braced(t.arg); ok {
			c.static = trimSpace(inner)
		}
	case "inline":
		c.kind = kindFixed
		c.fixed = parseInline(p, t.arg)
	default: // regexp:{ {rule}, {rule} } and friends
		inner, ok := braced(t.arg)
		if !ok {
			return nil, nil, fmt.Errorf("table: %q: unbalanced braces", t.spec)
		}
		var lines []logicalLine
		for i, tok := range splitBraced(inner) {
			if !tok.braced {
				p.errorf(i+1, "rule %q must be enclosed in { }", clip(tok.text))
				continue
			}
			if tok.text != "" {
				lines = append(lines, logicalLine{line: i + 1, text: tok.text})
			}
		}
		if t.typ == "cidr" {
			c.kind, c.cidr = kindCIDR, parseCIDR(p, lines)
		} else {
			c.kind, c.re = kindRegexp, parseRegexp(p, lines, dialectOf(t.typ))
		}
	}
	if len(p.errs) > 0 {
		return nil, nil, errors.Join(p.errs...)
	}
	c.warnings = p.warnings
	return c, nil, nil
}

// parseInline parses inline_table(5): "{ key=value, { key = text with
// spaces }, ... }". Entry numbers stand in for line numbers. As in Postfix
// a later duplicate replaces an earlier one; we also warn.
func parseInline(p *problems, arg string) map[string]entry {
	m := make(map[string]entry)
	inner, ok := braced(arg)
	if !ok {
		p.errorf(1, "want inline:{ key=value, ... }")
		return m
	}
	for i, tok := range splitBraced(inner) {
		n := i + 1
		key, value, found := strings.Cut(tok.text, "=")
		key, value = trimSpace(key), trimSpace(value)
		switch {
		case !found:
			p.errorf(n, "missing '=' in %q; want key=value", clip(tok.text))
			continue
		case key == "":
			p.errorf(n, "missing key in %q", clip(tok.text))
			continue
		case value == "":
			p.errorf(n, "missing value in %q", clip(tok.text))
			continue
		case spaceOutsideQuotes(key):
			// Postfix: "missing '=' after attribute name".
			p.errorf(n, "whitespace in key %q; put it in double quotes, as in {\"john doe\"@example.com = OK}", clip(key))
			continue
		}
		key = strings.ToLower(key)
		if old, dup := m[key]; dup {
			p.warnf(n, "duplicate entry %q replaces entry %d", key, old.line)
		}
		m[key] = entry{value: value, line: n}
	}
	if len(m) == 0 && len(p.errs) == 0 {
		p.errorf(1, "empty inline table")
	}
	return m
}

// spaceOutsideQuotes reports whitespace in s that is not between double
// quotes.
func spaceOutsideQuotes(s string) bool {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			quoted = !quoted
		case !quoted && isSpace(s[i]):
			return true
		}
	}
	return false
}

// braced returns what is inside s = "{...}", whose braces must balance.
func braced(s string) (string, bool) {
	s = trimSpace(s)
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return "", false
	}
	if end, ok := matchBrace(s, 0); !ok || end != len(s)-1 {
		return "", false
	}
	return s[1 : len(s)-1], true
}

// matchBrace returns the index of the '}' that closes the '{' at s[i].
func matchBrace(s string, i int) (int, bool) {
	level := 0
	for j := i; j < len(s); j++ {
		switch s[j] {
		case '{':
			level++
		case '}':
			if level--; level == 0 {
				return j, true
			}
		}
	}
	return 0, false
}

type token struct {
	text   string
	braced bool
}

// splitBraced splits s at commas and whitespace, except inside braces; a
// token in braces loses them and its surrounding whitespace.
func splitBraced(s string) []token {
	var out []token
	for i := 0; i < len(s); {
		c := s[i]
		if c == ',' || isSpace(c) {
			i++
			continue
		}
		if c == '{' {
			end, ok := matchBrace(s, i)
			if !ok {
				out = append(out, token{text: s[i:]})
				break
			}
			out = append(out, token{text: trimSpace(s[i+1 : end]), braced: true})
			i = end + 1
			continue
		}
		j := i
		for j < len(s) && s[j] != ',' && !isSpace(s[j]) {
			if s[j] == '{' {
				end, ok := matchBrace(s, j)
				if !ok {
					j = len(s)
					break
				}
				j = end
			}
			j++
		}
		out = append(out, token{text: s[i:j]})
		i = j
	}
	return out
}

// Spec is the spec the table was opened with.
func (t *Table) Spec() string { return t.spec }

// Path is the file the table reads, or "" for tables written in the spec.
func (t *Table) Path() string { return t.path }

// Warnings are the warnings of the contents in force, each FILE:LINE:
// message: duplicate keys (the first stays in force, as with postmap),
// "key: value" lines, extra text after if/endif in regexp and pcre tables.
func (t *Table) Warnings() []string {
	return append([]string(nil), t.cur.Load().warnings...)
}

// Reload re-reads the table file if it changed since it was last read:
// another file (inode), size or modification time. It reports whether new
// contents are now in force. When the new file does not parse, the old
// contents stay in force and Reload returns the file's errors, and returns
// them again on each call until the file changes. Tables without a file
// never change.
func (t *Table) Reload() (changed bool, err error) {
	if t.path == "" {
		return false, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fi, err := os.Stat(t.path)
	if err != nil {
		return false, pathError(err)
	}
	if sameVersion(fi, t.cur.Load().id) {
		return false, nil
	}
	if sameVersion(fi, t.failedID) {
		return false, t.failedErr
	}
	c, id, err := t.load()
	if err != nil {
		t.failedID, t.failedErr = id, err
		return false, err
	}
	t.failedID, t.failedErr = nil, nil
	t.cur.Store(c)
	return true, nil
}

func sameVersion(a, b os.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) &&
		a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}

// Set holds tables opened by spec, each file opened once however many
// specs name it. The zero Set is ready to use and safe for concurrent use.
type Set struct {
	// Warn, if not nil, is called with each warning (FILE:LINE: message,
	// see Table.Warnings) of a table's contents when they come into force:
	// when Open first opens the table and when ReloadAll reads a new
	// version, as postmap prints them each time it reads a file.
	Warn func(warning string)

	mu     sync.Mutex
	byKey  map[string]*Table // guarded by mu
	tables []*Table          // guarded by mu; in the order opened
}

// Open returns the set's table for spec, opening it on first use. Specs
// that read the same file the same way share a table: hash:/x, texthash:/x
// and /x are one table, regexp:/x and pcre:/x are two.
func (s *Set) Open(spec string) (*Table, error) {
	key, err := dedupKey(spec)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t, ok := s.byKey[key]; ok {
		return t, nil
	}
	t, err := Open(spec)
	if err != nil {
		return nil, err
	}
	if s.byKey == nil {
		s.byKey = make(map[string]*Table)
	}
	s.byKey[key] = t
	s.tables = append(s.tables, t)
	s.warn(t)
	return t, nil
}

// warn passes the warnings of t's contents in force to s.Warn.
func (s *Set) warn(t *Table) {
	if s.Warn == nil {
		return
	}
	for _, w := range t.Warnings() {
		s.Warn(w)
	}
}

func dedupKey(spec string) (string, error) {
	typ, arg, err := splitSpec(spec)
	if err != nil {
		return "", err
	}
	switch {
	case textTypes[typ]:
		return "text:" + filepath.Clean(arg), nil
	case (typ == "regexp" || typ == "pcre" || typ == "cidr") && !strings.HasPrefix(arg, "{"):
		return typ + ":" + filepath.Clean(arg), nil
	}
	return typ + ":" + arg, nil
}

// Tables returns the set's tables in the order they were opened.
func (s *Set) Tables() []*Table {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Table(nil), s.tables...)
}

// ReloadAll reloads every table (see Table.Reload) and returns the errors
// of those that failed; their old contents stay in force. The warnings of
// new contents go to s.Warn.
func (s *Set) ReloadAll() []error {
	var errs []error
	for _, t := range s.Tables() {
		changed, err := t.Reload()
		if err != nil {
			errs = append(errs, err)
		}
		if changed {
			s.warn(t)
		}
	}
	return errs
}

// pathError is err, a file's, for a message: "table: open PATH: ...", the
// path cut (clipPath), since the system's error repeats it whole and a
// setting may name one of a megabyte.
func pathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("table: %s %s: %w", pe.Op, clipPath(pe.Path), pe.Err)
	}
	return fmt.Errorf("table: %w", err)
}

// clipPath is path cut to its first 160 and last 60 bytes when it is
// longer than 256 (no file system takes a longer name than 4096).
func clipPath(path string) string {
	if len(path) <= 256 {
		return path
	}
	return strings.ToValidUTF8(path[:160], "") + "..." + strings.ToValidUTF8(path[len(path)-60:], "")
}
