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
// reads it, into a decision. A restriction list as a result is not run
// here: the engine's own tableAction does that.
func TableAction(v string) (Decision, error) {
	a, err := table.ParseAction(v)
	if err != nil {
		return Decision{}, err
	}
	return actionDecision(a), nil
}

// tableAction is TableAction that also reads the names of restriction
// classes, and runs a restriction list as a result (in list's wording).
func (e *Engine) tableAction(v string, list int) (Decision, error) {
	a, err := table.ParseActionWithClasses(v, e.classNames)
	if err != nil {
		return Decision{}, err
	}
	if a.Kind == table.Restriction {
		rs, err := e.nestedList(list, a.Arg)
		if err != nil {
			return Decision{}, err
		}
		return Decision{nested: rs}, nil
	}
	return actionDecision(a), nil
}

// validResult is the start-time check of a table result: an action, or a
// restriction list that this engine can run.
func (e *Engine) validResult(v string, list int) error {
	a, err := table.ParseActionWithClasses(v, e.classNames)
	if err == nil && a.Kind == table.Restriction {
		_, err = e.nestedList(list, a.Arg)
	}
	return err
}

func actionDecision(a table.Action) Decision {
	switch a.Kind {
	case table.OK:
		return Decision{Verdict: Permit}
	case table.Reject, table.Defer:
		code, enh, _ := a.Reply("")
		verdict := Reject
		if code < 500 {
			verdict = Defer
		}
		// The text stays as the table wrote it (empty for a bare
		// REJECT), but for control characters (a tab that joined a
		// continuation line), which become spaces as in Reply; the
		// engine words it as Postfix does.
		return Decision{Verdict: verdict, Code: code, Enhanced: enh, Text: table.Printable(a.Text)}
	case table.DeferIfPermit, table.DeferIfReject:
		code, enh, text := a.Reply("")
		when := deferIfPermit
		if a.Kind == table.DeferIfReject {
			when = deferIfReject
		}
		return Decision{Verdict: Defer, Code: code, Enhanced: enh, Text: text, deferIf: when}
	case table.Hold, table.Discard:
		// The text is for the log (access(5): "text is logged").
		v := Hold
		if a.Kind == table.Discard {
			v = Discard
		}
		return Decision{Verdict: v, Text: table.Printable(a.Text)}
	case table.Dunno:
		return Decision{}
	case table.Warn, table.Info:
		return Decision{Warnings: []string{a.Text}}
	case table.Filter:
		return Decision{Filter: a.Arg}
	case table.Prepend:
		return Decision{Prepend: []string{a.Arg}}
	case table.Redirect:
		return Decision{Redirect: a.Arg}
	case table.BCC:
		return Decision{BCC: []string{a.Arg}}
	}
	// A restriction list: see tableAction.
	return Decision{Warnings: []string{"a restriction list as a result is run only by the engine, ignored: " + a.String()}}
}

// accessResult is an access table's result v as the decision of rule;
// ok is false for a result the table should not hold, answered as
// Postfix answers it: 451 4.3.5 "Server configuration error", logged.
func (e *Engine) accessResult(v string, list int, rule string) (d Decision, ok bool) {
	d, err := e.tableAction(v, list)
	if err != nil {
		e.opts.Log.Error("bad access table result", "rule", rule, "value", v, "err", err)
		return deferral(451, "4.3.5", "Server configuration error", rule), false
	}
	d.Rule = rule
	return d, true
}
