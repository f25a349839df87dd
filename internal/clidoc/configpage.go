package clidoc

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"
)

// fieldDocs reads the doc comments of the struct fields in Go source:
// docs[type][field]. A field without a comment of its own shares the
// comment of the field before it, as in
//
//	// MinBackoff and MaxBackoff bound the retry delay.
//	MinBackoff time.Duration
//	MaxBackoff time.Duration
func fieldDocs(src []byte) (map[string]map[string]string, error) {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, "config.go", src, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("clidoc: %w", err)
	}
	docs := map[string]map[string]string{}
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, sp := range g.Specs {
			ts, ok := sp.(*ast.TypeSpec)
			if !ok {
				continue
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			// The type's own comment documents it as a section.
			m := map[string]string{"": g.Doc.Text()}
			var prev, prevName string
			prevLine := -1
			for _, fl := range st.Fields.List {
				line := fset.Position(fl.Pos()).Line
				for _, n := range fl.Names {
					doc := ""
					switch {
					case fl.Doc != nil:
						doc, prevName = fl.Doc.Text(), n.Name
					case line == prevLine+1 && sharedDoc(prev, prevName, n.Name):
						doc = prev
					}
					m[n.Name] = doc
					prev = doc
				}
				prevLine = fset.Position(fl.End()).Line
			}
			docs[ts.Name.Name] = m
		}
	}
	return docs, nil
}

// sharedDoc says whether the comment of the field owner, just above field
// with no comment of its own, covers field too: it names field ("MinBackoff
// and MaxBackoff bound...") or is about a group rather than about owner
// ("Per-destination pacing...").
func sharedDoc(doc, owner, field string) bool {
	if doc == "" {
		return false
	}
	return regexp.MustCompile(`\b`+field+`\b`).MatchString(doc) || !strings.HasPrefix(doc, owner+" ")
}

// key is one setting of the file.
type key struct {
	name, kind, def, doc string
}

// section is a [table] of the file; the top level has name "".
type section struct {
	name, doc string
	keys      []key
}

// configSections walks the configuration struct (defaults is its value
// with the defaults): its scalar fields are the top level,
// each struct field a section, and a map of structs a section per entry.
func configSections(defaults any, docs map[string]map[string]string) []section {
	def := reflect.ValueOf(defaults)
	t := def.Type()
	top := section{}
	var out []section
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" {
			continue
		}
		doc := docs[f.Type.Name()][""]
		if f.Type.Kind() == reflect.Map {
			doc = docs[t.Name()][f.Name]
		}
		switch {
		case f.Type.Kind() == reflect.Struct && f.Type != reflect.TypeOf(time.Duration(0)):
			out = append(out, section{name: name, doc: doc,
				keys: structKeys(f.Type, def.Field(i), docs)})
		case f.Type.Kind() == reflect.Map && f.Type.Elem().Kind() == reflect.Struct:
			out = append(out, section{name: name + ".NAME", doc: doc,
				keys: structKeys(f.Type.Elem(), reflect.Zero(f.Type.Elem()), docs)})
		default:
			doc = docs[t.Name()][f.Name]
			top.keys = append(top.keys, key{name, kind(f.Type), value(def.Field(i)), rename(doc, t, docs)})
		}
	}
	return append([]section{top}, out...)
}

func structKeys(t reflect.Type, v reflect.Value, docs map[string]map[string]string) []key {
	var ks []key
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name := tomlName(f)
		if name == "" {
			continue
		}
		ks = append(ks, key{name, kind(f.Type), value(v.Field(i)), rename(docs[t.Name()][f.Name], t, docs)})
	}
	return ks
}

func tomlName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if name == "-" {
		return ""
	}
	return name
}

// ident is a Go identifier in a comment.
var ident = regexp.MustCompile(`\b[A-Z][A-Za-z0-9]*\b`)

// rename replaces the Go field names of t in a comment with their keys, so
// that "MinBackoff and MaxBackoff bound..." reads "min_backoff and
// max_backoff bound..." on the page.
func rename(doc string, t reflect.Type, docs map[string]map[string]string) string {
	first := true
	return ident.ReplaceAllStringFunc(doc, func(w string) string {
		isFirst := first
		first = false
		// An all-capital word ("TLS") is a field name only where it
		// starts the comment; elsewhere it is an acronym.
		if !isFirst && strings.ToUpper(w) == w {
			return w
		}
		if f, ok := t.FieldByName(w); ok {
			if n := tomlName(f); n != "" {
				return n
			}
		}
		return w
	})
}

func kind(t reflect.Type) string {
	switch {
	case t == reflect.TypeOf(time.Duration(0)):
		return "duration"
	case t.Kind() == reflect.Bool:
		return "boolean"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Int64:
		return "integer"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Slice:
		return "array of " + kind(t.Elem()) + "s"
	}
	return t.Kind().String()
}

// value renders a default in TOML; "" for the zero value.
func value(v reflect.Value) string {
	if v.IsZero() {
		return ""
	}
	switch x := v.Interface().(type) {
	case time.Duration:
		return fmt.Sprintf("%q", shortDuration(x))
	}
	if v.Kind() == reflect.String {
		return fmt.Sprintf("%q", v.String())
	}
	if v.Kind() == reflect.Slice {
		var parts []string
		for i := 0; i < v.Len(); i++ {
			parts = append(parts, value(v.Index(i)))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return fmt.Sprint(v.Interface())
}

// ConfigPage writes relaykeeper.toml(5): every key of every section with
// its type, its default (from defaults, the configuration struct as it is
// when nothing is set), the switch of p that sets it, and its doc comment
// from configSource, the source of the file declaring the struct.
func ConfigPage(w io.Writer, configSource []byte, defaults any, p Program) error {
	docs, err := fieldDocs(configSource)
	if err != nil {
		return err
	}
	switches := map[string][]string{}
	for _, s := range p.switches() {
		for _, k := range s.Keys {
			switches[k] = append(switches[k], "--"+s.Long)
		}
	}
	var r roff
	r.header("relaykeeper.toml", "5", "File Formats Manual")
	r.macro("SH", "NAME")
	r.text("relaykeeper.toml - relaykeeper's configuration file")
	r.macro("SH", "SYNOPSIS")
	r.b.WriteString(bold("relaykeeper --config") + " " + italic("/etc/relaykeeper/relaykeeper.toml") + "\n")
	r.macro("SH", "DESCRIPTION")
	r.para("The file is TOML. Every key is optional: a missing key keeps its default, shown below. " +
		"Switches given on the command line override the file. Durations are strings such as \"90s\" " +
		"or \"5m\", or a number of seconds. An unknown key, a value of the wrong type or an " +
		"invalid setting is reported with the file and line, and the relay does not start.")
	for _, s := range configSections(defaults, docs) {
		if s.name == "" {
			r.macro("SH", "TOP-LEVEL KEYS")
		} else {
			r.macro("SH", quoted("["+s.name+"]"))
			if s.doc != "" {
				r.para(s.doc)
			}
		}
		for _, k := range s.keys {
			full := k.name
			if s.name != "" {
				full = strings.TrimSuffix(s.name, ".NAME") + "." + k.name
			}
			tag := bold(k.name) + " (" + esc(k.kind) + ")"
			desc := k.doc
			if k.def != "" {
				desc += " Default: " + k.def + "."
			}
			if sw := switches[full]; len(sw) > 0 {
				sort.Strings(sw)
				desc += " Set by " + strings.Join(sw, ", ") + "."
			}
			r.item(tag, desc)
		}
	}
	r.macro("SH", "EXAMPLE")
	r.pre(strings.Split(`mode = "server"

[smtp]
interfaces = ["127.0.0.1:2525"]

[forward]
to = "smtp.gmail.com:587"
poll = "60s"

[tls]
client = true
client_verify = "<default>"`, "\n"))
	r.macro("SH", "SEE ALSO")
	r.b.WriteString(bold("relaykeeper") + "(8)\n")
	return r.writeTo(w)
}

// shortDuration is d without zero units: "1m" rather than "1m0s".
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
