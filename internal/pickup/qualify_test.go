package pickup

import (
	"strings"
	"testing"
	"time"
)

// TestQualifyHeaderAddresses: addresses without a domain in a local
// submission's address fields get origin's, as Postfix's cleanup gives
// them $myorigin; what cannot be read as such is left as written.
func TestQualifyHeaderAddresses(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"From: root (Cron Daemon)", "From: root@web1.example (Cron Daemon)"},
		{"To: root", "To: root@web1.example"},
		{"To: Root User <root>", "To: Root User <root@web1.example>"},
		{"Cc: a, b@x.example, \"Q, R\" <q>", "Cc: a@web1.example,\r\n b@x.example,\r\n \"Q, R\" <q@web1.example>"},
		{"To: (root) root", "To: (root) root@web1.example"},
		{"To: undisclosed-recipients:;", "To: undisclosed-recipients:;"},
		{"To: \"quoted local\"", "To: \"quoted local\""},
		{"To: ro(x)ot", "To: ro(x)ot"},
		{"To: bob@example.com", "To: bob@example.com"},
		{"Subject: root", "Subject: root"},
		{"Reply-To: first.last", "Reply-To: first.last@web1.example"},
		{"To: .bad", "To: .bad"},
	} {
		m := Parse([]byte(c.in + "\n\nbody\n"))
		m.qualify("web1.example")
		if got := strings.TrimSuffix(m.fields[0].raw, "\r\n"); got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}

// TestSubmissionQualifiesHeaderRecipients: sendmail -t with "To: root"
// (mdadm, unattended-upgrades, logwatch) was refused; the header's
// recipients now get the origin, and the stored header says so.
func TestSubmissionQualifiesHeaderRecipients(t *testing.T) {
	r, err := ParseArgsIn(nil, "", false, true, "web1.example")
	if err != nil {
		t.Fatal(err)
	}
	m := Parse([]byte("From: root (Cron Daemon)\nTo: root, Admin <admin>\nSubject: x\n\nbody\n"))
	s, err := r.Submission(m, "root", "web1", 0, time.Unix(1_800_000_000, 0))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(s.Recipients, " "); got != "root@web1.example admin@web1.example" {
		t.Errorf("recipients %q", got)
	}
	if s.Sender.String() != "root@web1.example" {
		t.Errorf("sender %q", s.Sender)
	}
	content := string(m.content("ID", s))
	for _, want := range []string{"\r\nFrom: root@web1.example (Cron Daemon)\r\n", "\r\nTo: root@web1.example,\r\n Admin <admin@web1.example>\r\n"} {
		if !strings.Contains(content, want) {
			t.Errorf("stored message lacks %q:\n%s", want, content)
		}
	}
}

// FuzzQualify: qualifying never panics, is done once (a second pass
// changes nothing), and only ever adds the origin.
func FuzzQualify(f *testing.F) {
	for _, s := range []string{"root (Cron Daemon)", "root", "A <a>, b@x, \"Q, R\" <q>", "(c) r", "g:;", "a\\(b", "<>", "x <y> <z>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		if strings.ContainsAny(v, "\r\n") {
			return
		}
		m := Parse([]byte("To: " + v + "\n\nbody\n"))
		if len(m.fields) != 1 {
			return
		}
		m.qualify("o.example")
		once := m.fields[0].raw
		m.qualify("o.example")
		if m.fields[0].raw != once {
			t.Fatalf("%q: second pass changed %q to %q", v, once, m.fields[0].raw)
		}
		unfolded := strings.ReplaceAll(strings.ReplaceAll(once, ",\r\n ", ", "), "@o.example", "")
		if strings.Count(once, "@o.example") > 0 && strings.Fields(unfolded) == nil {
			t.Fatalf("%q: qualified to nothing", v)
		}
	})
}

// TestRev18QualifyAngleInComment: a '<' inside a comment was taken for the
// address's: "root (Ops <ops>)" kept root unqualified (sendmail -t then
// refused the message) and had the comment rewritten to "<ops@origin>";
// and a qualified address's comment was rewritten the same way.
func TestRev18QualifyAngleInComment(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"To: root (Ops <ops>)", "To: root@web1.example (Ops <ops>)"},
		{"To: bob@example.com (Bob <bob>)", "To: bob@example.com (Bob <bob>)"},
		{"To: \"Doe (x\" <root>", "To: \"Doe (x\" <root@web1.example>"},
		{"To: Ops <ops> (a <b>)", "To: Ops <ops@web1.example> (a <b>)"},
	} {
		m := Parse([]byte(c.in + "\n\nbody\n"))
		m.qualify("web1.example")
		if got := strings.TrimSuffix(m.fields[0].raw, "\r\n"); got != c.want {
			t.Errorf("%q: got %q, want %q", c.in, got, c.want)
		}
	}
}
