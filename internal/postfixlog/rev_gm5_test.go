package postfixlog

import "testing"

// TestRevGM5QueuedInternalForm: qmgr's line is read only in the shapes
// qmgr writes it. A sender logged in Postfix's internal form, unquoted,
// whose local part holds "@victim.example>, size=1", is not read as
// victim.example's.
func TestRevGM5QueuedInternalForm(t *testing.T) {
	const head = "Dec  6 10:00:00 mx postfix/qmgr[102]: 4C2B7985118: "
	for line, want := range map[string]string{
		head + "from=<s@spam.example>, size=500, nrcpt=1 (queue active)":                                                         "s@spam.example",
		head + "from=<>, size=2785, nrcpt=3 (queue active)":                                                                      "",
		head + `from=<"a b"@spam.example>, size=5, nrcpt=1 (queue active)`:                                                       `"a b"@spam.example`,
		head + "from=<s@spam.example>, status=expired, returned to sender":                                                       "s@spam.example",
		head + "from=<x@victim.example>, size=1@attacker.example>, size=500, nrcpt=1 (queue active)":                             "-",
		head + "from=<x@victim.example>, size=1, nrcpt=1 (queue active)>, size=500, nrcpt=1 (queue active)":                      "-",
		head + "from=<x@victim.example>, status=expired, returned to sender@attacker.example>, size=500, nrcpt=1 (queue active)": "-",
		head + "from=<x@victim.example>":                                                                                         "-",
		head + "from=<x@victim.example>, size=500, nrcpt=1":                                                                      "-",
	} {
		e, ok := ParseLine(line)
		switch {
		case want == "-" && ok:
			t.Errorf("ParseLine(%q) = from %q; want the line not read", line, e.From)
		case want != "-" && (!ok || e.Kind != Queued || e.From != want):
			t.Errorf("ParseLine(%q) = %v %v from %q; want queued from %q", line, ok, e.Kind, e.From, want)
		}
	}
}
