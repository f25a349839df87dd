package policy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
)

// nestKey names a compiled nested list: a table result's restriction list
// (spec as written) or a restriction class (class set, spec its name), in
// the wording of list.
type nestKey struct {
	list  int
	spec  string
	class bool
}

type nestEntry struct {
	rs  []restriction
	err error
}

// checkRun is what one Check has gathered so far, across its lists and
// the restriction lists that table results name.
type checkRun struct {
	final    *Decision
	warnings []string
	// DEFER_IF_PERMIT and DEFER_IF_REJECT results wait for the verdict
	// they are about (Postfix: for this recipient, across the lists).
	ifPermit, ifReject *Decision
	depth              int // of nested restriction lists
	// warn is a warn_if_reject in front of the restriction whose nested
	// list runs: as in Postfix, it holds for every restriction in it.
	warn bool
}

// maxNesting bounds restriction lists in table results that lead to
// tables whose results name lists again (a class that names itself).
const maxNesting = 8

// runList runs one list, or a restriction list that a table result named
// (nested). It returns a refusal, which ends the whole check, or reports
// whether the list ended with a permit (OK, DISCARD), which ends only the
// list, as in Postfix.
func (e *Engine) runList(ctx context.Context, run *checkRun, list int, rs []restriction, req *Request) (*Decision, bool) {
	final := run.final
	for i, r := range rs {
		if i > 0 && run.ifPermit != nil && run.ifReject != nil {
			// Postfix's generic_checks ends the list after an item
			// that leaves both pending: the answer will be a deferral
			// either way, and it is DEFER_IF_PERMIT's.
			return nil, false
		}
		d := r.check(ctx, e, req)
		warnOnly := r.warnOnly || run.warn
		switch {
		case d.deferIf == deferIfPermit && !warnOnly:
			// Postfix keeps the first reason, "to minimize confusion";
			// behind warn_if_reject it is only a warning (below).
			if run.ifPermit == nil {
				run.ifPermit = &d
			}
			continue
		case d.deferIf == deferIfReject:
			if run.ifReject == nil {
				run.ifReject = &d
			}
			continue
		}
		if d.nested != nil {
			if run.depth >= maxNesting {
				e.opts.Log.Error("restriction lists in table results nest too deep", "rule", d.Rule, "depth", run.depth)
				d = deferral(451, "4.3.5", "Server configuration error", d.Rule)
			} else {
				run.depth++
				outer := run.warn
				run.warn = warnOnly
				ref, permitted := e.runList(ctx, run, list, d.nested, req)
				run.depth--
				run.warn = outer
				if ref != nil {
					return ref, false
				}
				if permitted && r.name == "check_recipient_access" && routed(req.Recipient) {
					// Postfix's check_mail_access makes any OK its
					// lookup comes to a DUNNO for a routed recipient,
					// a restriction's or a class's as a table's own.
					run.warnings = append(run.warnings, d.Rule+": permit for the routed recipient <"+req.Recipient+"> ignored, as Postfix does")
					continue
				}
				if permitted {
					return nil, true
				}
				continue
			}
		}
		if warnOnly && d.Refuses() {
			run.warnings = append(run.warnings, fmt.Sprintf("%s would have refused: %s", r.name, d.Reply()))
			continue
		}
		run.warnings = append(run.warnings, d.Warnings...)
		switch d.Verdict {
		case Dunno:
			if d.Filter != "" {
				final.Filter = d.Filter
			}
			final.Prepend = append(final.Prepend, d.Prepend...)
			// Postfix: the last REDIRECT counts; "we may still change
			// our mind" (a later refusal).
			final.Redirect = cmp.Or(d.Redirect, final.Redirect)
			final.BCC = append(final.BCC, d.BCC...)
		case Permit:
			return nil, true
		case Hold:
			// Not final: the message will be held if nothing later
			// refuses it (Postfix's access(5)).
			if final.Verdict != Discard {
				final.Verdict, final.Rule, final.Text = d.Verdict, d.Rule, d.Text
			}
		case Discard:
			// Postfix's smtpd permits with DISCARD: it ends its own list
			// as OK does, and Check runs no later list.
			final.Verdict, final.Rule, final.Text = Discard, d.Rule, d.Text
			return nil, true
		default:
			if run.ifReject != nil && d.Verdict == Reject {
				// Postfix: a policy rejection after DEFER_IF_REJECT is
				// a deferral instead.
				d = *run.ifReject
			}
			return &d, false
		}
	}
	return nil, false
}

// compileItems compiles the items of one list (or of a restriction class
// or a result's list, in the wording of list), each bad item an error.
func (e *Engine) compileItems(i int, list []string) ([]restriction, []*ListError) {
	var rs []restriction
	var errs []*ListError
	warn := false
	for j := 0; j < len(list); j++ {
		words := strings.Fields(list[j])
		if len(words) == 0 {
			continue
		}
		name := lower(words[0])
		if name == "warn_if_reject" {
			if len(words) > 1 {
				errs = append(errs, &ListError{listNames[i], list[j], errors.New("takes no argument: write one restriction per list item")})
			}
			warn = true
			continue
		}
		args := words[1:]
		if needsArg[name] {
			// The table is the rest of the item, spaces and all
			// ("inline:{ a=OK, b=REJECT }"), or, as Postfix writes it,
			// the next item: "check_sender_access",
			// "hash:/etc/postfix/sender_access".
			arg := strings.TrimSpace(strings.TrimSpace(list[j])[len(words[0]):])
			if arg == "" && j+1 < len(list) {
				j++
				arg = strings.TrimSpace(list[j])
			}
			args = nil
			if arg != "" {
				args = []string{arg}
			}
		}
		r, err := e.compile(i, name, args)
		if err != nil {
			errs = append(errs, &ListError{listNames[i], list[j], err})
			continue
		}
		r.warnOnly, r.item = warn, list[j]
		warn = false
		rs = append(rs, r)
	}
	return rs, errs
}

// nestedList compiles, once for each list, a restriction list that a
// table result names ("permit_mynetworks, reject", "reject_rbl_client
// zen.example", a class name), or with class set the items of the class
// spec names.
func (e *Engine) nestedList(list int, spec string) ([]restriction, error) {
	return e.nestedCompile(nestKey{list: list, spec: spec})
}

func (e *Engine) nestedCompile(k nestKey) ([]restriction, error) {
	if v, ok := e.nested.Load(k); ok {
		n := v.(nestEntry)
		return n.rs, n.err
	}
	items := e.classes[lower(k.spec)]
	if !k.class {
		// Postfix separates a result's restrictions with commas or
		// blanks; a restriction's argument is the next word.
		items = strings.FieldsFunc(k.spec, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	}
	rs, errs := e.compileItems(k.list, items)
	var err error
	if len(errs) > 0 {
		err = errs[0].Err
		if len(errs) > 1 || len(items) > 1 {
			err = fmt.Errorf("%q: %w", errs[0].Item, errs[0].Err)
		}
	}
	v, _ := e.nested.LoadOrStore(k, nestEntry{rs, err})
	n := v.(nestEntry)
	return n.rs, n.err
}

// ListError is a restriction list item that does not compile.
type ListError struct {
	List string // "client_restrictions"
	Item string // the item as written
	Err  error
}

func (e *ListError) Error() string {
	if e.List == listNames[mailList] { // made of enforce.sender_access, not written
		return fmt.Sprintf("%s: %v", e.ConfigKey(), e.Err)
	}
	return fmt.Sprintf("policy.%s: %q: %v", e.List, clipItem(e.Item), e.Err)
}

// clipItem shortens an item quoted in an error: a list item is the
// operator's, but one a megabyte long (a file pasted into the config by
// mistake) must not become a megabyte of error on the terminal and in the
// log; the error's FILE:LINE says where it is.
func clipItem(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func (e *ListError) Unwrap() error { return e.Err }

// ConfigKey is the configuration key of the list ("policy.client_restrictions"),
// so that the error can be placed at its line.
func (e *ListError) ConfigKey() string {
	if e.List == listNames[mailList] {
		return "enforce.sender_access"
	}
	return "policy." + e.List
}
