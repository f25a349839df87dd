package config

import (
	"strconv"
	"strings"
)

// refusesRelay reports whether a restriction list can refuse a recipient
// outside relay_domains, as Postfix's has_required requires of
// smtpd_relay_restrictions or smtpd_recipient_restrictions: a restriction
// that does so, not behind warn_if_reject nor after a "permit", which ends
// the list before it runs (["permit", "reject_unauth_destination"] lets
// anyone relay anywhere); as in Postfix, a restriction class the list
// names counts with its own items, and a "permit" in it ends the list too.
func refusesRelay(list []string, classes map[string][]string) bool {
	return relayCheckIn(list, classes, map[string]bool{}) == relayRefused
}

// What relayCheckIn found first in a list.
const (
	relayNothing = iota
	relayRefused // a restriction that refuses relaying
	relayEnded   // a permit, which ends the list before one
)

func relayCheckIn(list []string, classes map[string][]string, seen map[string]bool) int {
	warn := false
	for _, item := range list {
		words := strings.Fields(strings.ToLower(item))
		if len(words) == 0 {
			continue
		}
		switch name := words[0]; {
		case name == "warn_if_reject":
			warn = true
		case warn:
			warn = false
		case name == "permit":
			return relayEnded
		case name == "reject_unauth_destination" || name == "defer_unauth_destination" || name == "reject" || name == "defer":
			return relayRefused
		case len(words) == 1 && !seen[name]:
			seen[name] = true // a class that names itself
			for class, items := range classes {
				if strings.ToLower(class) != name {
					continue
				}
				if r := relayCheckIn(items, classes, seen); r != relayNothing {
					return r
				}
			}
		}
	}
	return relayNothing
}

// namesRestriction reports whether a restriction list, or a restriction
// class, names the restriction name (written in any case).
func (c *Config) namesRestriction(name string) bool {
	p := &c.Policy
	lists := [][]string{p.ClientRestrictions, p.HeloRestrictions, p.SenderRestrictions, p.RelayRestrictions,
		p.RecipientRestrictions, p.DataRestrictions, p.EndOfDataRestrictions}
	for _, l := range p.RestrictionClasses {
		lists = append(lists, l)
	}
	for _, l := range lists {
		for _, item := range l {
			if w := strings.Fields(item); len(w) > 0 && strings.EqualFold(w[0], name) {
				return true
			}
		}
	}
	return false
}

// pastedLine returns the first item of list that holds a whole main.cf
// restriction line rather than one restriction: a comma, or a word after
// the first that is itself a restriction ("permit_mynetworks
// reject_unauth_destination"), and the list it should have been. A
// restriction's own arguments are tables, zones and addresses, never
// such words; what is inside braces is left alone. The policy refuses these items too, but the open-relay
// check, which runs first, would otherwise say that a list naming
// reject_unauth_destination lacks it.
func pastedLine(list []string) (item string, want []string, ok bool) {
	for _, it := range list {
		bare := outsideBraces(it) // check_policy_service { a, b } and inline:{ k=v, ... } are one item
		words := strings.FieldsFunc(bare, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
		pasted := strings.Contains(bare, ",")
		for _, w := range words[min(1, len(words)):] {
			lw := strings.ToLower(w)
			pasted = pasted || lw == "permit" || lw == "reject" || lw == "defer" || lw == "dunno" ||
				strings.HasPrefix(lw, "permit_") || strings.HasPrefix(lw, "reject_") ||
				strings.HasPrefix(lw, "defer_") || strings.HasPrefix(lw, "check_")
		}
		if pasted {
			return it, words, true
		}
	}
	return "", nil, false
}

// outsideBraces is s with what braces enclose, nested braces too, left out.
func outsideBraces(s string) string {
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '{':
			depth++
		case r == '}' && depth > 0:
			depth--
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// tomlStrings writes words as the items of a TOML list: "a", "b".
func tomlStrings(words []string) string {
	q := make([]string, len(words))
	for i, w := range words {
		q[i] = strconv.Quote(w)
	}
	return strings.Join(q, ", ")
}
