package config

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Load reads the TOML file at path over Default() and records where each
// key was (Config.Origin), so that later problems can name the line.
//
// It reports every problem in the file at once, as Problems, one per line
// and each as "FILE:LINE: ...": a syntax error (the parser stops there, so
// that one comes alone), a value of the wrong type, a bad duration, and a
// key that relaykeeper does not know. Unknown keys are errors rather than
// warnings because a misspelt key silently leaves a default in force, and
// in a mail relay that default may be "accept from anyone".
//
// Load does not call Validate: the command line is merged over the file
// first, and only the merged result is worth judging.
//
// Durations are strings such as "60s", "5m" or "5d" (Postfix's days and
// weeks are taken); a bare number, as a string or a TOML integer, is
// seconds as in E-MailRelay's switches. forward.to is
// resolved as ResolveHostPort does, when it can be.
func Load(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("config: %w", err)
	}
	cfg := Default()
	if err := decode(path, data, &cfg); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// Problem is one thing wrong with the configuration, placed where the
// operator can find it: a file and line, a switch, or at least a key.
type Problem struct {
	File   string // empty when the problem does not come from a file
	Line   int    // 0 when unknown
	Switch string // the switch that set the value, when it came from one
	Key    string // the TOML key, "smtp.port"
	Msg    string
}

// Error formats the problem as "FILE:LINE: KEY: MSG", leaving out what is
// unknown, and naming the switch instead when the value came from one.
func (p Problem) Error() string {
	var b strings.Builder
	switch {
	case p.Switch != "":
	case p.File != "" && p.Line > 0:
		fmt.Fprintf(&b, "%s:%d: ", p.File, p.Line)
	case p.File != "":
		fmt.Fprintf(&b, "%s: ", p.File)
	}
	switch {
	case p.Switch != "":
		b.WriteString(p.Switch + ": ")
	case p.Key != "":
		b.WriteString(p.Key + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Problems is every problem found, in file order. It is an error so that
// Load and Validate can return all of them, one per line, instead of
// making the operator fix them one restart at a time.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.Error()
	}
	return strings.Join(lines, "\n")
}

// ParseDuration reads a duration the way both the file and the switches
// accept it: a bare number of seconds ("90", E-MailRelay's form) or a Go
// duration ("90s", "5m", "1h30m"), which may also use Postfix's units d
// (days) and w (weeks), as its lifetimes are written ("5d", "1w", "1d12h").
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s != "" && strings.Trim(s, "0123456789") == "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > math.MaxInt64/int64(time.Second) {
			return 0, fmt.Errorf("%q is too many seconds", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(inHours(s))
	if err != nil {
		return 0, fmt.Errorf("invalid duration %q; want seconds or a duration such as \"90s\" or \"5m\"", s)
	}
	return d, nil
}

// inHours rewrites the parts of a duration in Postfix's units that Go's
// lack, days and weeks, in hours ("1w2d12h" is "168h48h12h"), for
// time.ParseDuration to read. It takes the text as Go's parser does, a
// number and a unit at a time; anything else it leaves for that parser
// to refuse. A number too large for any duration stays too large.
func inHours(s string) string {
	var b strings.Builder
	rest := strings.TrimLeft(s, "+-")
	b.WriteString(s[:len(s)-len(rest)])
	for rest != "" {
		n := len(rest) - len(strings.TrimLeft(rest, "0123456789."))
		u := n + len(rest[n:]) - len(strings.TrimLeft(rest[n:], "abcdefghijklmnopqrstuvwxyzµμ"))
		num, unit := rest[:n], rest[n:u]
		if n == 0 || u == n {
			return s
		}
		if per := map[string]float64{"d": 24, "w": 7 * 24}[unit]; per != 0 {
			f, err := strconv.ParseFloat(num, 64)
			if err != nil || strings.Count(num, ".") > 1 {
				return s
			}
			num, unit = strconv.FormatFloat(f*per, 'f', -1, 64), "h"
		}
		b.WriteString(num + unit)
		rest = rest[u:]
	}
	return b.String()
}

// decode merges the TOML in data over cfg. It walks the document itself
// rather than letting toml.Decode fill the struct, because toml.Decode
// stops at the first bad value and matches keys without regard to case,
// whereas an operator wants every problem at once and TOML keys are
// case-sensitive.
func decode(file string, data []byte, cfg *Config) error {
	if line, braces := tooDeep(data); line > 0 {
		what := "dots outside quotes"
		if braces {
			what = "inline tables ({...}) inside one another"
		}
		return Problems{{File: file, Line: line, Msg: fmt.Sprintf("more than %d %s: no relaykeeper key is nested this deep", maxDots, what)}}
	}
	var doc map[string]any
	if _, err := toml.Decode(string(data), &doc); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			line := syntaxErrorLine(data, pe.Position)
			return Problems{{File: file, Line: line, Msg: twice(plainParseMessage(pe.Message), data, line) + foreign(file, data, line)}}
		}
		return fmt.Errorf("config: %s: %w", file, err)
	}
	d := &decoder{file: file, lines: keyLines(string(data))}
	d.table(nil, doc, reflect.ValueOf(cfg).Elem())
	cfg.Origin = Origin{File: file, Lines: d.lines}
	// Resolve "smarthost:smtp" once, as the switches do, so that delivery
	// dials a plain host:port; a bad one is left for Validate to report.
	if to, err := ResolveHostPort(cfg.Forward.To); err == nil {
		cfg.Forward.To = to
	}
	if len(d.probs) > 0 {
		sort.SliceStable(d.probs, func(i, j int) bool {
			a, b := d.probs[i], d.probs[j]
			if a.Line != b.Line {
				return a.Line < b.Line
			}
			return a.Key < b.Key
		})
		return d.probs
	}
	return nil
}

// twice rewrites the parser's "Key 'smtp' has already been defined." for
// line, which sends the operator looking for a key where a heading was
// repeated; other messages are returned as they are.
func twice(msg string, data []byte, line int) string {
	key, pre := strings.CutPrefix(msg, "Key '")
	key, suf := strings.CutSuffix(key, "' has already been defined.")
	if !pre || !suf {
		return msg
	}
	if lines := strings.Split(string(data), "\n"); line > 0 && line <= len(lines) &&
		strings.HasPrefix(strings.TrimSpace(lines[line-1]), "[") {
		return "[" + key + "] is written twice: a section has one heading in TOML; put its keys under the first"
	}
	return key + " is given twice: a key is given once in TOML"
}

// plainParseMessage words the parser's messages that name Go's types
// ("99999999999999999999 is out of range for int64") for whoever wrote
// the number, and keeps a quoted newline ("not a hexadecimal number:
// '0x\n'") from breaking the one-line report.
func plainParseMessage(msg string) string {
	for _, typ := range []string{"int64", "float64"} {
		if n, ok := strings.CutSuffix(msg, " is out of range for "+typ); ok {
			return n + " is out of range: no setting takes a number of that size"
		}
	}
	return strings.ReplaceAll(msg, "\n", `\n`)
}

// maxDots bounds the dots outside quoted strings on one line. The TOML
// parser takes time and memory quadratic in a dotted key's depth
// (BurntSushi/toml issue 496, in v1.6.0, the newest served): a 60 KB line
// of "a.a.a..." would keep the relay from starting for minutes. No key of
// relaykeeper's is more than three deep. Inline tables nested in one
// another are keys as deep, and as costly: "x = {a={a=...1}}" 3,000 deep
// (12 KB) took 840 MB and 11 s of CPU, 50,000 deep (150 KB) more than
// 7 GB. maxDots bounds their nesting too.
const maxDots = 64

// tooDeep returns the first line with more than maxDots dots outside
// quoted strings and comments, or where more than maxDots inline tables
// are open, and braces true for the latter; or 0. Multi-line strings are
// skipped.
func tooDeep(data []byte) (line int, braces bool) {
	line, dots, depth := 1, 0, 0
	var quote string // the open string's delimiter: ", ', """ or '''
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case quote == "" && c == '{':
			if depth++; depth > maxDots {
				return line, true
			}
		case quote == "" && c == '}':
			depth = max(depth-1, 0)
		case c == '\n':
			line, dots = line+1, 0
			if len(quote) == 1 {
				quote = "" // a one-line string does not go on
			}
		case quote != "":
			if c == '\\' && quote[0] == '"' {
				i++
			} else if strings.HasPrefix(string(data[i:min(i+3, len(data))]), quote) {
				i += len(quote) - 1
				quote = ""
			}
		case c == '#':
			for i+1 < len(data) && data[i+1] != '\n' {
				i++
			}
		case c == '"' || c == '\'':
			quote = string(c)
			if i+2 < len(data) && data[i+1] == c && data[i+2] == c {
				quote, i = string([]byte{c, c, c}), i+2
			}
		case c == '.':
			if dots++; dots > maxDots {
				return line, false
			}
		}
	}
	return 0, false
}

// syntaxErrorLine is the line of a syntax error. The lexer has already
// counted a newline when it complains about one ("[smtp" with no "]"), so
// such an error would be put on the next line, where there is nothing to
// fix; it belongs to the line that the newline ends.
func syntaxErrorLine(data []byte, pos toml.Position) int {
	// Offsets are into the text after a byte-order mark, as the toml
	// package strips one; none of them holds a newline.
	for _, bom := range []string{"\xef\xbb\xbf", "\xff\xfe", "\xfe\xff"} {
		if s, ok := bytes.CutPrefix(data, []byte(bom)); ok {
			data = s
			break
		}
	}
	if pos.Start > 0 && pos.Start < len(data) && data[pos.Start] == '\n' &&
		pos.Line == bytes.Count(data[:pos.Start], []byte("\n"))+2 {
		return pos.Line - 1
	}
	return pos.Line
}

type decoder struct {
	file  string
	lines map[string]int
	probs Problems
}

func (d *decoder) problem(key, format string, args ...any) {
	d.probs = append(d.probs, Problem{
		File: d.file,
		Line: d.lines[key],
		Key:  key,
		Msg:  fmt.Sprintf(format, args...),
	})
}

var durationType = reflect.TypeFor[time.Duration]()

// table decodes the TOML table raw into the struct v; path is the table's
// key. Only the topmost unknown key is reported: the keys inside an
// unknown table are implied.
func (d *decoder) table(path toml.Key, raw map[string]any, v reflect.Value) {
	for name, val := range raw {
		key := append(path[:len(path):len(path)], name)
		f, ok := fieldByKey(v.Type(), name)
		if !ok {
			if hint := suggest(path, name, v.Type()); hint != "" {
				d.problem(key.String(), "unknown key; %s", hint)
			} else {
				d.problem(key.String(), "unknown key")
			}
			continue
		}
		d.value(key, val, v.FieldByIndex(f.Index))
	}
}

// bareNumberUnits are the keys named after Postfix parameters whose bare
// numbers Postfix reads in a unit other than seconds (its default time
// unit for each). A bare number there is refused rather than read as
// seconds: the mistake is a migrated main.cf's, and costs bounced mail.
var bareNumberUnits = map[string]string{
	"delivery.max_queue_lifetime":    "d",
	"delivery.bounce_queue_lifetime": "d",
	"delivery.delay_warning":         "h",
}

// bareNonZero reports whether a TOML value is a number without a unit,
// other than 0 (which means the same in every unit).
func bareNonZero(val any) bool {
	switch x := val.(type) {
	case int64:
		return x != 0
	case string:
		x = strings.TrimSpace(x)
		return x != "" && strings.Trim(x, "0123456789") == "" && strings.Trim(x, "0") != ""
	}
	return false
}

// fieldByKey finds the struct field whose toml tag is exactly name.
func fieldByKey(t reflect.Type, name string) (reflect.StructField, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag != "" && tag != "-" && tag == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

// value decodes one TOML value into the field v, or records why not.
func (d *decoder) value(key toml.Key, val any, v reflect.Value) {
	k := key.String()
	switch {
	case v.Type() == durationType:
		if unit, ok := bareNumberUnits[k]; ok && bareNonZero(val) {
			// A Postfix administrator's "max_queue_lifetime = 5" means
			// days; read as seconds it would bounce every deferred
			// message five seconds after its arrival.
			d.problem(k, "%v would be %v seconds; Postfix reads a bare number here as %v %s: write \"%v%s\" (or \"%vs\" for seconds)",
				val, val, val, map[string]string{"d": "days", "h": "hours"}[unit], val, unit, val)
			return
		}
		switch x := val.(type) {
		case string:
			dur, err := ParseDuration(x)
			if err != nil {
				d.problem(k, "%v", err)
				return
			}
			v.SetInt(int64(dur))
		case int64:
			if x < math.MinInt64/int64(time.Second) || x > math.MaxInt64/int64(time.Second) {
				d.problem(k, "%d is too many seconds", x)
				return
			}
			v.SetInt(x * int64(time.Second))
		default:
			d.problem(k, "want a duration such as \"60s\", got %s", tomlType(val))
		}
	case v.Kind() == reflect.Struct:
		m, ok := val.(map[string]any)
		if !ok {
			d.problem(k, "want a table, got %s", tomlType(val))
			return
		}
		d.table(key, m, v)
	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String && v.Type().Elem().Kind() == reflect.Struct:
		// A table of named tables: [transports.NAME].
		m, ok := val.(map[string]any)
		if !ok {
			d.problem(k, "want a table of tables, got %s", tomlType(val))
			return
		}
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
		}
		for name, raw := range m {
			sub, ok := raw.(map[string]any)
			nk := append(key[:len(key):len(key)], name)
			if !ok {
				d.problem(nk.String(), "want a table, got %s", tomlType(raw))
				continue
			}
			elem := reflect.New(v.Type().Elem()).Elem()
			d.table(nk, sub, elem)
			v.SetMapIndex(reflect.ValueOf(name), elem)
		}
	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String && v.Type().Elem().Kind() == reflect.Slice:
		// A table of lists: [policy.restriction_classes] name = [...].
		m, ok := val.(map[string]any)
		if !ok {
			d.problem(k, "want a table of arrays, got %s", tomlType(val))
			return
		}
		out := reflect.MakeMapWithSize(v.Type(), len(m))
		for name, raw := range m {
			elem := reflect.New(v.Type().Elem()).Elem()
			d.value(append(key[:len(key):len(key)], name), raw, elem)
			out.SetMapIndex(reflect.ValueOf(name), elem)
		}
		v.Set(out)
	case v.Kind() == reflect.Map && v.Type().Key().Kind() == reflect.String && v.Type().Elem().Kind() == reflect.String:
		// A table of strings: [milter] macros = { j = "..." }.
		m, ok := val.(map[string]any)
		if !ok {
			d.problem(k, "want a table of strings, got %s", tomlType(val))
			return
		}
		out := reflect.MakeMapWithSize(v.Type(), len(m))
		for name, raw := range m {
			s, ok := raw.(string)
			if !ok {
				d.problem(append(key[:len(key):len(key)], name).String(), "want a string, got %s", tomlType(raw))
				continue
			}
			out.SetMapIndex(reflect.ValueOf(name), reflect.ValueOf(s))
		}
		v.Set(out)
	case v.Kind() == reflect.String:
		s, ok := val.(string)
		if !ok {
			d.problem(k, "want a string, got %s", tomlType(val))
			return
		}
		v.SetString(s)
	case v.Kind() == reflect.Bool:
		b, ok := val.(bool)
		if !ok {
			d.problem(k, "want true or false, got %s", tomlType(val))
			return
		}
		v.SetBool(b)
	case v.Kind() >= reflect.Int && v.Kind() <= reflect.Int64:
		n, ok := val.(int64)
		if !ok {
			d.problem(k, "want an integer, got %s", tomlType(val))
			return
		}
		if v.OverflowInt(n) {
			d.problem(k, "%d is out of range", n)
			return
		}
		v.SetInt(n)
	case v.Kind() == reflect.Float64:
		switch n := val.(type) {
		case float64:
			v.SetFloat(n)
		case int64:
			v.SetFloat(float64(n))
		default:
			d.problem(k, "want a number, got %s", tomlType(val))
		}
	case v.Kind() == reflect.Slice && v.Type().Elem().Kind() == reflect.String:
		arr, ok := val.([]any)
		if !ok {
			d.problem(k, "want an array of strings, got %s", tomlType(val))
			return
		}
		if len(arr) == 0 {
			// nil, like the default, so that "= []" and no key compare equal.
			v.SetZero()
			return
		}
		out := reflect.MakeSlice(v.Type(), 0, len(arr))
		for i, e := range arr {
			s, ok := e.(string)
			if !ok {
				d.problem(k, "want an array of strings, got %s at index %d", tomlType(e), i)
				return
			}
			out = reflect.Append(out, reflect.ValueOf(s).Convert(v.Type().Elem()))
		}
		v.Set(out)
	default:
		// A field type added to Config without teaching decode about it;
		// TestExampleFile catches this before an operator does.
		d.problem(k, "cannot decode into %s", v.Type())
	}
}

// tomlType names the TOML type of a decoded value for error messages.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	case []map[string]any:
		return "an array of tables"
	}
	return fmt.Sprintf("%T", v)
}

// probe reports the position of whatever TOML value it is decoded from:
// the toml package exports no position for a key, but it does attach the
// key's position to the ParseError it returns when an Unmarshaler fails.
type probe struct{}

var errProbe = errors.New("probe")

func (probe) UnmarshalTOML(any) error { return errProbe }

// keyLines maps every key in the TOML document src (as toml.Key.String
// spells it) to its line. A table that only exists implicitly, as "a" does
// in "[a.b]" or in "a.b = 1", gets the line of its first key. Keys inside
// arrays of tables are not listed; relaykeeper has none.
func keyLines(src string) map[string]int {
	lines := make(map[string]int)
	var root map[string]toml.Primitive
	md, err := toml.Decode(src, &root)
	if err != nil {
		return lines
	}
	var walk func(path toml.Key, tbl map[string]toml.Primitive)
	walk = func(path toml.Key, tbl map[string]toml.Primitive) {
		for name, prim := range tbl {
			key := append(path[:len(path):len(path)], name)
			var pe toml.ParseError
			if err := md.PrimitiveDecode(prim, &probe{}); errors.As(err, &pe) && pe.Position.Line > 0 {
				lines[key.String()] = pe.Position.Line
			}
			// Decoding a non-table into a map leaves the map nil.
			var sub map[string]toml.Primitive
			if err := md.PrimitiveDecode(prim, &sub); err == nil && sub != nil {
				walk(key, sub)
			}
		}
	}
	walk(nil, root)
	// Keys() is in document order, so the first key under an implicit
	// table is where that table appears to start.
	for _, key := range md.Keys() {
		line := lines[key.String()]
		if line == 0 {
			continue
		}
		for i := 1; i < len(key); i++ {
			parent := key[:i].String()
			if lines[parent] == 0 {
				lines[parent] = line
			}
		}
	}
	return lines
}

// DefaultFile is the configuration file that the commands an
// administrator runs beside the relay read when given none: the one the
// systemd unit starts the relay with. sendmail and mailq read it too.
var DefaultFile = "/etc/relaykeeper/relaykeeper.toml"

// SpoolDir is the spool directory a subcommand works on: --spool-dir
// (flagDir), else that of --config (configFile), else that of DefaultFile
// if it exists (as mailq finds it), else the default.
func SpoolDir(flagDir, configFile string) (string, error) {
	cfg, err := subcommandConfig(flagDir, configFile)
	if err != nil {
		return "", err
	}
	return cmp.Or(flagDir, cfg.Spool.Dir), nil
}

// BanFiles are the ban file and the welcomelist `relaykeeper bans` reads,
// as the relay started with the same switches uses them: bans and welcome
// when given (--bans, --welcomelist), else the configuration's [enforce]
// bans and welcomelist, else those files in the spool directory's
// .enforce (SpoolDir).
func BanFiles(bans, welcome, flagDir, configFile string) (string, string, error) {
	cfg, err := subcommandConfig(flagDir, configFile)
	if err != nil {
		return "", "", err
	}
	state := filepath.Join(cmp.Or(flagDir, cfg.Spool.Dir), ".enforce")
	return cmp.Or(bans, cfg.Enforce.Bans, filepath.Join(state, "bans")),
		cmp.Or(welcome, cfg.Enforce.Welcomelist, filepath.Join(state, "welcomelist")), nil
}

// subcommandConfig is the configuration a subcommand reads: configFile,
// else DefaultFile if it exists and flagDir is not given, else the
// defaults.
func subcommandConfig(flagDir, configFile string) (Config, error) {
	if configFile == "" && flagDir == "" {
		if _, err := os.Stat(DefaultFile); err == nil {
			configFile = DefaultFile
		}
	}
	if configFile == "" {
		return Default(), nil
	}
	return Load(configFile)
}
