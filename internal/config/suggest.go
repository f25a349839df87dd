package config

import (
	"reflect"
	"slices"
	"strings"
)

// suggest says which key an unknown key at path (its table's key, then
// name) was probably meant to be, or "" when nothing is close: a key of
// the same table a letter or two off ("prot" for port, "Port", or
// E-MailRelay's dashes, "remote-clients"); a top-level key written after a
// [section] heading, which TOML puts in that section; a key of other
// sections; an E-MailRelay switch's name ("spool-dir"). in is the struct
// type of the table the key is in.
func suggest(path []string, name string, in reflect.Type) string {
	full := func(k string) string { return strings.Join(append(slices.Clip(path), k), ".") }
	if k := closest(tomlKeys(in), name); k != "" {
		if len(path) == 0 && in == reflect.TypeFor[Config]() && tableKey(in, k) {
			return "did you mean [" + k + "]?"
		}
		return "did you mean " + full(k) + "?"
	}
	root := reflect.TypeFor[Config]()
	if in == root {
		for _, s := range Switches() {
			if s.Long == name && len(s.Keys) > 0 {
				return "--" + s.Long + "'s setting is " + strings.Join(s.Keys, " and ")
			}
		}
	}
	var sections []string
	for _, k := range tomlKeys(root) {
		f, _ := fieldByKey(root, k)
		switch {
		case f.Type == in || f.Type.Kind() == reflect.Map:
		case f.Type.Kind() != reflect.Struct || f.Type == durationType:
			if k == name {
				return name + " is a top-level key: write it above the first [section] heading"
			}
		case slices.Contains(tomlKeys(f.Type), name) && !tableKey(f.Type, name):
			sections = append(sections, "["+k+"]")
		}
	}
	if len(sections) == 0 {
		return ""
	}
	last := sections[len(sections)-1]
	if len(sections) > 1 {
		last = strings.Join(sections[:len(sections)-1], ", ") + " and " + last
	}
	return name + " is a key of " + last
}

// foreign says what the file at a syntax error's line looks like when it
// is not relaykeeper's TOML: E-MailRelay's configuration file ("spool-dir
// /var/spool/x", read as the last argument) or Postfix's main.cf
// ("myhostname = relay.example.com", not read at all); "" otherwise.
func foreign(file string, data []byte, line int) string {
	lines := strings.Split(string(data), "\n")
	if line < 1 || line > len(lines) {
		return ""
	}
	text := strings.TrimSpace(lines[line-1])
	name, _, _ := strings.Cut(strings.ReplaceAll(text, "\t", " "), " ")
	if !strings.Contains(text, "=") && slices.ContainsFunc(Switches(), func(s Switch) bool { return s.Long == name }) {
		return "; this looks like E-MailRelay's configuration file: give it as the last argument (relaykeeper " + file + "), not with --config"
	}
	for _, p := range []string{"my", "smtpd_", "smtp_", "relayhost", "inet_", "alias_", "virtual_", "transport_maps", "queue_directory", "compatibility_level"} {
		if strings.HasPrefix(name, p) && strings.Contains(text, "=") {
			return "; this looks like Postfix's main.cf: relaykeeper's file is TOML (strings in quotes, lists in [ ]), and docs/postfix-migration.md says what each main.cf parameter becomes"
		}
	}
	return ""
}

// tomlKeys are the keys of the struct type t, in its order.
func tomlKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		if tag, _, _ := strings.Cut(t.Field(i).Tag.Get("toml"), ","); tag != "" && tag != "-" {
			keys = append(keys, tag)
		}
	}
	return keys
}

// tableKey says whether key names a table of t (a section) rather than a value.
func tableKey(t reflect.Type, key string) bool {
	f, ok := fieldByKey(t, key)
	return ok && (f.Type.Kind() == reflect.Struct && f.Type != durationType || f.Type.Kind() == reflect.Map)
}

// closest is the key of keys nearest to name, compared without regard to
// case and with dashes as underscores: one edit away, or two for a name
// of five letters or more; "" if none is.
func closest(keys []string, name string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	best, bestD := "", 2
	if len(name) >= 5 {
		bestD = 3
	}
	for _, k := range keys {
		if d := editDistance(norm(k), norm(name)); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// editDistance is the distance between a and b in bytes inserted,
// deleted, replaced or swapped with the next (Damerau's, restricted).
func editDistance(a, b string) int {
	var prev2 []int
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev = prev, cur
	}
	return prev[len(b)]
}
