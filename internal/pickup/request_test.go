package pickup

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseArgs(t *testing.T) {
	r, err := ParseArgs([]string{"<a@b.example>, c@d.example", "a@b.example", ""}, "<me@x.example>", true, false)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a@b.example", "c@d.example"}; !cmp.Equal(r.Recipients, want) || r.Sender.String() != "me@x.example" {
		t.Errorf("ParseArgs = %q, %q; want %q, me@x.example", r.Recipients, r.Sender, want)
	}
	for _, tc := range []struct {
		rcpts []string
		from  string
		want  string
	}{
		{nil, "", "no recipients"},
		{[]string{"not an address"}, "", `recipient "not an address"`},
		{[]string{"a@b.example"}, "bad sender", `sender "bad sender"`},
	} {
		if _, err := ParseArgs(tc.rcpts, tc.from, tc.from != "", false); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseArgs(%q, %q) = %v; want an error containing %q", tc.rcpts, tc.from, err, tc.want)
		}
	}
	if r, err := ParseArgs(nil, "<>", true, true); err != nil || r.Sender.String() != "" {
		t.Errorf("ParseArgs(-t -f <>) = %+v, %v; want the null sender", r, err)
	}
}

func TestRequestSubmission(t *testing.T) {
	m := Parse([]byte("From: Ann <ann@x.example>\nTo: a@b.example, e@f.example\nBcc: g@h.example\n\nbody\n"))
	r := Request{Recipients: []string{"a@b.example"}, FromHeaders: true}
	s, err := r.Submission(m, "carol", "host.example", 7, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a@b.example", "e@f.example", "g@h.example"}; !cmp.Equal(s.Recipients, want) || s.Sender.String() != "ann@x.example" {
		t.Errorf("Submission = %q from %q; want %q from ann@x.example", s.Recipients, s.Sender, want)
	}
	s, err = Request{Recipients: []string{"a@b.example"}}.Submission(Parse([]byte("\nbody\n")), "carol", "host.example", 7, time.Time{})
	if err != nil || s.Sender.String() != "carol@host.example" {
		t.Errorf("Submission without From = %q, %v; want carol@host.example", s.Sender, err)
	}
	if _, err := (Request{FromHeaders: true}).Submission(Parse([]byte("Subject: x\n\n")), "c", "h", 0, time.Time{}); err == nil {
		t.Error("Submission(-t, no To/Cc/Bcc) = nil error; want one")
	}
}

// TestParseArgsInQualifies: with an origin, an address without a domain
// gets it (cron's "sendmail root"); without one it is an error, as before.
func TestParseArgsInQualifies(t *testing.T) {
	r, err := ParseArgsIn([]string{"root", "ops@example.net"}, "backup", true, false, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(r.Recipients, " "); got != "root@example.com ops@example.net" || r.Sender.String() != "backup@example.com" {
		t.Errorf("ParseArgsIn = %q from %q; want root@example.com ops@example.net from backup@example.com", got, r.Sender)
	}
	if _, err := ParseArgs([]string{"root"}, "", false, false); err == nil {
		t.Error("ParseArgs(root) without an origin: no error")
	}
	if _, err := ParseArgsIn([]string{"bad user"}, "", false, false, "example.com"); err == nil {
		t.Error(`ParseArgsIn("bad user"): no error; the origin does not make a bad local part good`)
	}
}
