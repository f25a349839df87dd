package policy

import "github.com/relaykeeper/relaykeeper/internal/table"

// SetTables serves Options.Tables from a table.Set, which opens each
// table once and reloads it.
type SetTables struct{ Set *table.Set }

// Open opens spec in the set.
func (s SetTables) Open(spec string) (AccessMap, error) {
	t, err := s.Set.Open(spec)
	if err != nil {
		return nil, err
	}
	return t, nil
}

// TableAction turns an access(5) table result, as the table package
// reads it, into a decision.
func TableAction(v string) (Decision, error) {
	a, err := table.ParseAction(v)
	if err != nil {
		return Decision{}, err
	}
	switch a.Kind {
	case table.OK:
		return Decision{Verdict: Permit}, nil
	case table.Reject, table.Defer:
		code, enh, _ := a.Reply("")
		verdict := Reject
		if code < 500 {
			verdict = Defer
		}
		// The text stays as the table wrote it (empty for a bare
		// REJECT); the engine words it as Postfix does.
		return Decision{Verdict: verdict, Code: code, Enhanced: enh, Text: a.Text}, nil
	case table.DeferIfPermit, table.DeferIfReject:
		code, enh, text := a.Reply("")
		when := deferIfPermit
		if a.Kind == table.DeferIfReject {
			when = deferIfReject
		}
		return Decision{Verdict: Defer, Code: code, Enhanced: enh, Text: text, deferIf: when}, nil
	case table.Hold:
		return Decision{Verdict: Hold}, nil
	case table.Discard:
		return Decision{Verdict: Discard}, nil
	case table.Dunno:
		return Decision{}, nil
	case table.Warn, table.Info:
		return Decision{Warnings: []string{a.Text}}, nil
	case table.Filter:
		return Decision{Filter: a.Arg}, nil
	case table.Prepend:
		return Decision{Prepend: []string{a.Arg}}, nil
	case table.Redirect:
		return Decision{Redirect: a.Arg}, nil
	case table.BCC:
		return Decision{BCC: []string{a.Arg}}, nil
	}
	// Nested restriction lists are read but not acted on yet: say so in
	// the log rather than guess.
	return Decision{Warnings: []string{"access action not supported yet, ignored: " + a.String()}}, nil
}
