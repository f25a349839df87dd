package config

import "strings"

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
