package spool

import "strings"

// MergeDuplicates returns rcpts with each address once, in the order of
// first mention, as Postfix's cleanup drops a recipient given twice. The
// envelope keeps DSN parameters by address, so two entries for one
// address cannot keep two requests: the one left asks for every notice
// either asked for (RFC 3461's NOTIFY, NEVER only if both said NEVER) and
// keeps the first ORCPT given. Addresses are compared as written, as
// Postfix compares them.
func MergeDuplicates(rcpts []Recipient) []Recipient {
	at := make(map[string]int, len(rcpts))
	out := rcpts[:0:0]
	for _, r := range rcpts {
		i, seen := at[r.Addr]
		if !seen {
			at[r.Addr] = len(out)
			out = append(out, r)
			continue
		}
		out[i].Notify = mergeNotify(out[i].Notify, r.Notify)
		if out[i].ORCPT == "" {
			out[i].ORCPT = r.ORCPT
		}
	}
	return out
}

// mergeNotify returns the NOTIFY that asks for every notice a or b asks
// for; empty (no NOTIFY: failure and delay, the relay's default) stays
// empty where the other adds nothing to it.
func mergeNotify(a, b string) string {
	words := func(n string) []string {
		if strings.TrimSpace(n) == "" {
			return []string{"FAILURE", "DELAY"}
		}
		var w []string
		for _, s := range strings.Split(strings.ToUpper(n), ",") {
			if s = strings.TrimSpace(s); s != "NEVER" && s != "" {
				w = append(w, s)
			}
		}
		return w
	}
	want := map[string]bool{}
	for _, w := range append(words(a), words(b)...) {
		want[w] = true
	}
	if len(want) == 0 {
		return "NEVER"
	}
	if (a == "" || b == "") && len(want) == 2 && want["FAILURE"] && want["DELAY"] {
		return ""
	}
	var out []string
	for _, w := range []string{"SUCCESS", "FAILURE", "DELAY"} {
		if want[w] {
			out = append(out, w)
		}
	}
	return strings.Join(out, ",")
}
