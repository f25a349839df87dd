package headercheck

import "testing"

// TestPF25BlankBeforeColon: a field written with white space between its
// name and colon ("Subject : x", RFC 5322 section 4.5.3's obsolete syntax,
// which mail readers show as the Subject) is matched as Postfix's
// header_checks match it, without that white space: checked against
// Postfix 3.7, which refuses "Subject : buy viagra" with the rule below
// and hands "/^(X-M)(.*)$/ REJECT [$2]" the text ": v" for "X-M \t : v".
// The relay matched the field as written, so a sender could step around
// any rule that names a field by adding a blank before the colon.
func TestPF25BlankBeforeColon(t *testing.T) {
	c := openChecks(t, "/^Subject: .*viagra/ REJECT spam subject\n/^(X-M)(.*)$/ REJECT [$2]\n", "")
	for _, tc := range []struct{ msg, want string }{
		{crlf("Subject : buy viagra", "", "x"), "spam subject"},
		{crlf("Subject\t: buy viagra", "", "x"), "spam subject"},
		{crlf("To: u@example.com", "Subject  :  buy viagra", "", "x"), "spam subject"},
		{crlf("X-M \t : v", "", "x"), "[: v]"},
		{crlf("X-M :v", " w", "", "x"), "[:v  w]"}, // the fold's newline becomes a space in a reply
		{crlf("X-M: v", "", "x"), "[: v]"},
	} {
		out, res := apply(t, c, tc.msg)
		if res.Verdict != Reject || res.Text != tc.want {
			t.Errorf("Apply(%q) = %s %q; want reject %q", tc.msg, res.Verdict, res.Text, tc.want)
		}
		if out != tc.msg {
			t.Errorf("Apply(%q) wrote %q; want the message unchanged", tc.msg, out)
		}
	}
}
