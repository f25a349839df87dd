// Package clidoc writes the command line's documentation, the man pages
// and shell completion, from the same tables the program parses with: the
// switch table and the configuration structs in internal/config and each
// subcommand's usage text. Generated output is committed under docs/man and
// a test compares it with what the code says, so that neither can drift.
package clidoc

import (
	"fmt"
	"io"
	"regexp"
	"strings"
)

// roff accumulates a man page. Text given to its methods is plain; the
// methods escape it.
type roff struct {
	b strings.Builder
}

// esc makes plain text safe as roff input text: backslashes are escaped,
// hyphens become minus signs where they are part of switches and
// paths, and a line cannot begin with a control character.
func esc(s string) string {
	s = strings.ReplaceAll(s, `\`, `\e`)
	s = strings.ReplaceAll(s, "-", `\-`)
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, ".") || strings.HasPrefix(l, "'") {
			lines[i] = `\&` + l
		}
	}
	return strings.Join(lines, "\n")
}

// macro writes a request line: ".SH NAME".
func (r *roff) macro(name string, args ...string) {
	r.b.WriteString("." + name)
	for _, a := range args {
		r.b.WriteString(" " + a)
	}
	r.b.WriteString("\n")
}

// quoted is a macro argument in double quotes, which roff cannot escape
// inside them: they become \(dq.
func quoted(s string) string {
	return `"` + strings.ReplaceAll(esc(s), `"`, `\(dq`) + `"`
}

// text writes a paragraph's words, one sentence of input per output line.
func (r *roff) text(s string) {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return
	}
	r.b.WriteString(esc(s) + "\n")
}

// para starts a paragraph and writes s into it.
func (r *roff) para(s string) {
	r.macro("PP")
	r.text(s)
}

// pre writes lines as they are, without filling, indented.
func (r *roff) pre(lines []string) {
	r.macro("PP")
	r.macro("nf")
	r.macro("RS", "2")
	for _, l := range lines {
		r.b.WriteString(esc(l) + "\n")
	}
	r.macro("RE")
	r.macro("fi")
}

// item writes a tagged paragraph: the tag on its own line (already roff),
// the description filled below it.
func (r *roff) item(tag, desc string) {
	r.macro("TP")
	r.b.WriteString(tag + "\n")
	if strings.TrimSpace(desc) == "" {
		r.b.WriteString(`\&` + "\n")
		return
	}
	r.text(desc)
}

func (r *roff) header(name, section, manual string) {
	r.macro("TH", quoted(strings.ToUpper(name)), section, `""`, quoted("relaykeeper"), quoted(manual))
}

func (r *roff) writeTo(w io.Writer) error {
	_, err := io.WriteString(w, r.b.String())
	return err
}

// bold and italic are font changes around escaped text.
func bold(s string) string   { return `\fB` + esc(s) + `\fR` }
func italic(s string) string { return `\fI` + esc(s) + `\fR` }

// switchTag renders a switch as a tag: "-d, --as-server HOST:PORT".
func switchTag(long, short, arg string) string {
	tag := bold("--" + long)
	if short != "" {
		tag = bold("-"+short) + ", " + tag
	}
	if arg != "" {
		tag += " " + italic(arg)
	}
	return tag
}

// optionLine matches a line of a usage text's switch list: an indented
// first column, two or more spaces, and the description.
var optionLine = regexp.MustCompile(`^\s+(\S(?:\S| \S)*)\s{2,}(\S.*)$`)

// usageTag renders the first column of a usage text's switch list: the
// switches in bold, their values in italics.
func usageTag(col string) string {
	var parts []string
	for _, w := range strings.Fields(col) {
		switch {
		case strings.HasPrefix(w, "-") && len(w) > 1:
			sep := ""
			if strings.HasSuffix(w, ",") {
				w, sep = strings.TrimSuffix(w, ","), ","
			}
			parts = append(parts, bold(w)+sep)
		case w == strings.ToUpper(w) && strings.ContainsAny(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"):
			parts = append(parts, italic(w))
		default:
			parts = append(parts, esc(w))
		}
	}
	return strings.Join(parts, " ")
}

// check reports a usage text that this package cannot turn into a page.
func check(name, usage string) error {
	if !strings.HasPrefix(usage, "usage: ") {
		return fmt.Errorf("clidoc: %s: usage text does not start with \"usage: \"", name)
	}
	return nil
}
