package table

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseAction(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Action
	}{
		{"OK", Action{Kind: OK}},
		{"ok", Action{Kind: OK}},
		{"RELAY", Action{Kind: OK}},
		{"OK trailing text", Action{Kind: OK, Text: "trailing text"}},
		{"1234567890", Action{Kind: OK, Arg: "1234567890"}},
		{"450", Action{Kind: OK, Arg: "450"}}, // all-numeric wins over 4NN
		{"REJECT", Action{Kind: Reject}},
		{"reject go away", Action{Kind: Reject, Text: "go away"}},
		{"REJECT 5.7.0 go away", Action{Kind: Reject, Enhanced: "5.7.0", Text: "go away"}},
		{"REJECT 5.7.1000 not a code", Action{Kind: Reject, Text: "5.7.1000 not a code"}},
		{"DEFER", Action{Kind: Defer}},
		{"DEFER 4.3.0 try later", Action{Kind: Defer, Enhanced: "4.3.0", Text: "try later"}},
		{"DEFER_IF_REJECT", Action{Kind: DeferIfReject}},
		{"defer_if_permit maybe later", Action{Kind: DeferIfPermit, Text: "maybe later"}},
		{"550 No such user", Action{Kind: Reject, Code: 550, Text: "No such user"}},
		{"421 4.7.0 go away now", Action{Kind: Reject, Code: 421, Enhanced: "4.7.0", Text: "go away now"}},
		{"450 4.7.1", Action{Kind: Reject, Code: 450, Enhanced: "4.7.1"}},
		{"DISCARD", Action{Kind: Discard}},
		{"DISCARD spam trap", Action{Kind: Discard, Text: "spam trap"}},
		{"HOLD check this", Action{Kind: Hold, Text: "check this"}},
		{"DUNNO", Action{Kind: Dunno}},
		{"WARN suspicious", Action{Kind: Warn, Text: "suspicious"}},
		{"INFO noted", Action{Kind: Info, Text: "noted"}},
		{"FILTER smtp:[127.0.0.1]:10025", Action{Kind: Filter, Arg: "smtp:[127.0.0.1]:10025"}},
		{"PREPEND X-Checked: yes", Action{Kind: Prepend, Arg: "X-Checked: yes"}},
		{"REDIRECT abuse@example.com", Action{Kind: Redirect, Arg: "abuse@example.com"}},
		{"BCC archive@example.com", Action{Kind: BCC, Arg: "archive@example.com"}},
		{"permit_mynetworks", Action{Kind: Restriction, Arg: "permit_mynetworks"}},
		{"permit_mynetworks, reject_unauth_destination", Action{Kind: Restriction, Arg: "permit_mynetworks, reject_unauth_destination"}},
		{"reject_rbl_client zen.spamhaus.org, permit", Action{Kind: Restriction, Arg: "reject_rbl_client zen.spamhaus.org, permit"}},
		{"  REJECT\tspaced  out  ", Action{Kind: Reject, Text: "spaced  out"}},
	} {
		got, err := ParseAction(tc.in)
		if err != nil {
			t.Errorf("ParseAction(%q): %v", tc.in, err)
			continue
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("ParseAction(%q) mismatch (-want +got):\n%s", tc.in, diff)
		}
		again, err := ParseAction(got.String())
		if err != nil || again != got {
			t.Errorf("ParseAction(%q) = %+v, %v; want %+v (round trip of %q)", got.String(), again, err, got, tc.in)
		}
	}
}

func TestParseActionErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "empty action"},
		{"   ", "empty action"},
		{"FROBNICATE", `unknown action or restriction "FROBNICATE"`},
		{"350 text", `unknown action or restriction "350"`},
		{"550", ""}, // all-numeric: OK, not an error; see TestParseAction
		{"FILTER", "FILTER requires transport:destination"},
		{"FILTER nocolon", "FILTER requires transport:destination"},
		{"REDIRECT nobody", "REDIRECT requires a user@domain"},
		{"BCC", "BCC requires a user@domain"},
		{"PREPEND no header", "PREPEND requires a header"},
		{"PREPEND : x", "PREPEND requires a header"},
		// From a policy service's answer, which only a newline ends.
		{"PREPEND X-A: b\rX-Smuggled: 1", "PREPEND requires a header"},
		{"REDIRECT a@b.example\rX-MailRelay-To-Remote:c@d.example", "REDIRECT requires a user@domain"},
		{"BCC a@", "BCC requires a user@domain"},
		{"REDIRECT <a@b.example>", "REDIRECT requires a user@domain"},
		{"check_sender_access hash:/etc/postfix/x", "lookup tables are not allowed"},
		{"reject_rbl_client", "reject_rbl_client requires an argument"},
		{"permit_mynetworks, my_class", `unknown action or restriction "my_class"`},
	} {
		_, err := ParseAction(tc.in)
		if tc.want == "" {
			if err != nil {
				t.Errorf("ParseAction(%q): %v; want no error", tc.in, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseAction(%q) = %v; want an error containing %q", tc.in, err, tc.want)
		}
	}
	a, err := ParseActionWithClasses("permit_mynetworks, My_Class", []string{"my_class"})
	if err != nil || a.Kind != Restriction {
		t.Errorf("ParseActionWithClasses(class) = %+v, %v; want a Restriction", a, err)
	}
}

func TestActionReply(t *testing.T) {
	type reply struct {
		Code           int
		Enhanced, Text string
	}
	for _, tc := range []struct {
		in, def string
		want    reply
	}{
		{"REJECT", "", reply{554, "5.7.1", "Access denied"}},
		{"REJECT Not here", "", reply{554, "5.7.1", "Not here"}},
		{"REJECT 5.7.0 Not here", "", reply{554, "5.7.0", "Not here"}},
		{"REJECT 4.7.0 class follows code", "", reply{554, "5.7.0", "class follows code"}},
		{"REJECT", "5.1.1", reply{554, "5.1.1", "Access denied"}},
		{"DEFER", "", reply{450, "4.7.1", "Access denied"}},
		{"DEFER", "5.1.1", reply{450, "4.1.1", "Access denied"}},
		{"DEFER_IF_REJECT", "", reply{450, "4.7.1", "Service unavailable"}},
		{"DEFER_IF_PERMIT 4.7.5 later", "", reply{450, "4.7.5", "later"}},
		{"550 5.1.1 No such user", "", reply{550, "5.1.1", "No such user"}},
		{"451 try again", "", reply{451, "4.7.1", "try again"}},
		{"421 bye", "", reply{421, "4.7.1", "bye"}},
		{"OK", "", reply{}},
		{"DISCARD", "", reply{}},
		{"permit", "", reply{}},
	} {
		a, err := ParseAction(tc.in)
		if err != nil {
			t.Fatalf("ParseAction(%q): %v", tc.in, err)
		}
		var got reply
		got.Code, got.Enhanced, got.Text = a.Reply(tc.def)
		if got != tc.want {
			t.Errorf("ParseAction(%q).Reply(%q) = %+v; want %+v", tc.in, tc.def, got, tc.want)
		}
	}
	// Text can never break the reply into two lines.
	a := Action{Kind: Reject, Text: "a\r\nb\x00c\xffd"}
	if _, _, text := a.Reply(""); text != "a  b c d" {
		t.Errorf("Reply text = %q; want %q", text, "a  b c d")
	}
	// A code outside 4xx/5xx gets Postfix's safe reply.
	a = Action{Kind: Reject, Code: 250, Text: "oops"}
	if code, enh, text := a.Reply(""); code != 450 || enh != "4.7.1" || text != "Service unavailable" {
		t.Errorf("Reply(code 250) = %d %s %s; want 450 4.7.1 Service unavailable", code, enh, text)
	}
}

func TestKindString(t *testing.T) {
	if got := DeferIfPermit.String(); got != "DEFER_IF_PERMIT" {
		t.Errorf("DeferIfPermit.String() = %q", got)
	}
	if got := Kind(0).String(); got != "Kind(0)" {
		t.Errorf("Kind(0).String() = %q", got)
	}
}

func TestValidateActions(t *testing.T) {
	path := writeFile(t, "access", "a OK\nb FROB\nc REJECT\nd FILTER x\n")
	err := mustOpen(t, path).ValidateActions(nil)
	want := path + `:2: "FROB": unknown action or restriction "FROB"` + "\n" +
		path + `:4: "FILTER x": FILTER requires transport:destination`
	if err == nil || err.Error() != want {
		t.Errorf("ValidateActions() = %v; want\n%s", err, want)
	}
	re := mustOpen(t, "pcre:{ {/(.*)/ $1}, {/x/ BOGUS} }")
	if err := re.ValidateActions(nil); err == nil || !strings.Contains(err.Error(), ":2: ") {
		t.Errorf("ValidateActions(pcre) = %v; want one error at entry 2", err)
	}
	cidr := mustOpen(t, "cidr:{ {10.0.0.0/8 OK}, {if 192.0.2.0/24}, {192.0.2.1 NOPE}, {endif} }")
	if err := cidr.ValidateActions([]string{"nope"}); err != nil {
		t.Errorf("ValidateActions(cidr, class nope) = %v; want nil", err)
	}
	if err := mustOpen(t, "static:OK").ValidateActions(nil); err != nil {
		t.Errorf("ValidateActions(static:OK) = %v", err)
	}
}
