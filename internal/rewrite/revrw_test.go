package rewrite

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

func revrwCanonical(t *testing.T) *Canonical {
	return &Canonical{Sender: []Table{open(t, "inline:{ root@host.local=alerts@example.com }")},
		Recipient: []Table{open(t, "inline:{ a@b.example=z@b.example }")}}
}

// writeInSteps passes msg through a HeaderWriter in writes of step bytes.
func writeInSteps(t *testing.T, c *Canonical, msg string, step int) string {
	t.Helper()
	var out bytes.Buffer
	h := &HeaderWriter{W: &out, C: c}
	for s := msg; len(s) > 0; {
		n := min(step, len(s))
		if _, err := h.Write([]byte(s[:n])); err != nil {
			t.Fatal(err)
		}
		s = s[n:]
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	return out.String()
}

// The header section ends at the first line that is not a field, as
// Postfix's cleanup ends it, blank line or not: what follows is the body,
// and a "From:" line in it was rewritten.
func TestRevRWHeaderEndsAtNonHeaderLine(t *testing.T) {
	c := revrwCanonical(t)
	for _, tc := range []struct{ in, want string }{
		{"Subject: x\r\nbody line\r\nFrom: root@host.local\r\n", "Subject: x\r\nbody line\r\nFrom: root@host.local\r\n"},
		{"From: root@host.local\r\nhello\r\nTo: a@b.example\r\n", "From: alerts@example.com\r\nhello\r\nTo: a@b.example\r\n"},
		{" folded first\r\nFrom: root@host.local\r\n\r\n", " folded first\r\nFrom: root@host.local\r\n\r\n"},
		{"From: root@host.local\r\n>From: root@host.local\r\n", "From: alerts@example.com\r\n>From: root@host.local\r\n"},
		{"From: root@host.local\r\nno colon", "From: alerts@example.com\r\nno colon"},
		{"From : root@host.local\r\n\r\n", "From : alerts@example.com\r\n\r\n"},
	} {
		for _, step := range []int{1, 5, 4096} {
			if got := writeInSteps(t, c, tc.in, step); got != tc.want {
				t.Errorf("%q in writes of %d: %q; want %q", tc.in, step, got, tc.want)
			}
		}
	}
}

// Reply-To and Mail-Followup-To are sender fields in Postfix
// (header_opts.c, HDR_OPT_SENDER): sender_canonical_maps applies to them,
// recipient_canonical_maps does not. Resent-Reply-To is a recipient field.
func TestRevRWReplyToIsSenderClass(t *testing.T) {
	c := revrwCanonical(t)
	in := "Reply-To: root@host.local, a@b.example\r\nMail-Followup-To: <root@host.local>\r\n" +
		"Resent-Reply-To: root@host.local, a@b.example\r\n\r\n"
	want := "Reply-To: alerts@example.com, a@b.example\r\nMail-Followup-To: <alerts@example.com>\r\n" +
		"Resent-Reply-To: root@host.local, z@b.example\r\n\r\n"
	if got := writeInSteps(t, c, in, 4096); got != want {
		t.Errorf("got %q\nwant %q", got, want)
	}
}

// A field of up to 100 KiB is held and rewritten: a field of thousands of
// thousands of addresses, or a header written a few bytes at a time (as
// header_checks writes it), took minutes of CPU per message (quadratic).
func TestRevRWLargeHeaderIsLinear(t *testing.T) {
	c := revrwCanonical(t)
	var changed, quoted, lines strings.Builder
	changed.WriteString("To: a@b.example")
	quoted.WriteString("To: \"q q\"@b.example")
	for changed.Len() < maxField-100 {
		changed.WriteString(",a@b.example")
		quoted.WriteString(",\"q q\"@b.example")
		lines.WriteString("X: y\r\n")
	}
	for _, tc := range []struct {
		name, msg string
		step      int
	}{
		{"many rewritten addresses", changed.String() + "\r\n\r\nbody", 65536},
		{"many unfound addresses", quoted.String() + "\r\n\r\nbody", 65536},
		{"small writes", lines.String() + "\r\nbody", 6},
	} {
		start := time.Now()
		out := writeInSteps(t, c, tc.msg, tc.step)
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("%s: %v", tc.name, d)
		}
		if !strings.HasSuffix(out, "\r\n\r\nbody") {
			t.Errorf("%s: body lost", tc.name)
		}
	}
	if out := writeInSteps(t, c, changed.String()+"\r\n\r\n", 65536); strings.Contains(out, "a@b.example") {
		t.Error("an address left unmapped")
	}
}

// A trailing dot after the domain or an RFC 821 source route stepped past
// the canonical maps: MAIL FROM:<root@host.local.> left unmapped for the
// provider to refuse, where Postfix's trivial-rewrite strips both before
// cleanup maps the address (and the relay's own access lookups do too).
func TestRevRWCanonicalResolvedForm(t *testing.T) {
	c := &Canonical{Sender: []Table{open(t, "inline:{ root@host.local=alerts@example.com, @old.example=@new.example }")}, Delims: "+"}
	for in, want := range map[string]string{
		"root@host.local.":           "alerts@example.com",
		"@a.example:root@host.local": "alerts@example.com",
		"anne+x@old.example.":        "anne+x@new.example",
		"@a,@b:anne@old.example":     "anne@new.example",
		"x@other.example.":           "x@other.example.", // no table maps it: as written
		"@a:x@other.example":         "@a:x@other.example",
	} {
		if got := c.SenderAddr(in); got != want {
			t.Errorf("%q -> %q; want %q", in, got, want)
		}
	}
}

// An address that also appears inside a quoted display name (or a
// comment) is replaced where it stands as an address: the display name
// "x root@host.local y" was rewritten instead, and the real address, the
// one the provider checks, was left unmapped.
func TestRevRWDisplayNameNotRewritten(t *testing.T) {
	c := revrwCanonical(t)
	for in, want := range map[string]string{
		"From: \"x root@host.local y\" <root@host.local>\r\n\r\n":                  "From: \"x root@host.local y\" <alerts@example.com>\r\n\r\n",
		"From: \"a\\\" root@host.local\" <root@host.local>\r\n\r\n":                "From: \"a\\\" root@host.local\" <alerts@example.com>\r\n\r\n",
		"To: a@b.example (was a@b.example), \"a@b.example\" <a@b.example>\r\n\r\n": "To: z@b.example (was a@b.example), \"a@b.example\" <z@b.example>\r\n\r\n",
	} {
		if got := writeInSteps(t, c, in, 4096); got != want {
			t.Errorf("%q -> %q; want %q", in, got, want)
		}
	}
}

// A From: whose display name is an encoded word in a charset other than
// UTF-8 or ISO-8859-1 (ISO-2022-JP, windows-1252: everyday Japanese and
// Outlook mail), raw 8-bit, or that has a comment before its address, did
// not parse, so the whole field was left unmapped: the provider got the
// unverified From. Postfix maps it whatever the display name.
func TestRevRWDisplayNameCharsets(t *testing.T) {
	c := revrwCanonical(t)
	for _, name := range []string{"=?ISO-2022-JP?B?GyRCJUYlOSVIGyhC?=", "=?windows-1252?q?J=F6rg?=", "J\xf6rg", "(c)"} {
		in := "From: " + name + " <root@host.local>\r\nTo: a@b.example\r\n\r\n"
		want := "From: " + name + " <alerts@example.com>\r\nTo: z@b.example\r\n\r\n"
		if got := writeInSteps(t, c, in, 4096); got != want {
			t.Errorf("%q -> %q; want %q", in, got, want)
		}
	}
}

// A longer address in place of a shorter one took a line past RFC 5322's
// 998 octets: a script's one-line To: of many local addresses, mapped to
// a longer domain, left as a line some servers refuse or cut. The line
// is folded at a blank, as Postfix's cleanup folds a field it rewrote; a
// line the client itself sent long stays as it came.
func TestRevRWRewrittenLineFolded(t *testing.T) {
	c := &Canonical{Recipient: []Table{open(t, "inline:{ @host.local=@a-much-longer-domain.example.com }")}}
	var addrs []string
	for i := range 45 {
		addrs = append(addrs, fmt.Sprintf("user%02d@host.local", i))
	}
	in := "To: " + strings.Join(addrs, ", ") + "\r\nSubject: x\r\n\r\nbody\r\n"
	out := writeInSteps(t, c, in, 4096)
	head, body, _ := strings.Cut(out, "\r\n\r\n")
	for line := range strings.Lines(head + "\r\n") {
		if len(line) > 1000 {
			t.Errorf("a line of %d octets", len(line)-2)
		}
	}
	unfolded := strings.ReplaceAll(head, "\r\n ", " ")
	if want := "To: " + strings.ReplaceAll(strings.Join(addrs, ", "), "@host.local", "@a-much-longer-domain.example.com") + "\r\nSubject: x"; unfolded != want {
		t.Errorf("unfolded header %q; want %q", unfolded, want)
	}
	if body != "body\r\n" {
		t.Errorf("body %q", body)
	}
	long := "To: \"" + strings.Repeat("x", 1000) + "\" <user00@host.local>\r\n\r\n"
	if got := writeInSteps(t, c, long, 4096); got != strings.Replace(long, "@host.local", "@a-much-longer-domain.example.com", 1) {
		t.Errorf("a line sent long was refolded: %q", got)
	}
}

// A table value written with angle brackets or a display name
// ("<alerts@example.com>", "Alerts <alerts@example.com>") became the
// envelope address as written: MAIL FROM:<<alerts@example.com>> upstream,
// refused by every server, and the notices about it undeliverable.
// Postfix reads the value as an address (mail_addr_crunch); so does the
// relay now, and a value that is no address maps nothing and is refused
// at start.
func TestRevRWCanonicalResultIsAnAddress(t *testing.T) {
	c := &Canonical{Sender: []Table{open(t, "hash:testdata/revrw_canonical")}}
	for in, want := range map[string]string{
		"root@host.local":  "alerts@example.com",
		"cron@host.local":  "alerts@example.com",
		"list@host.local":  "first@example.com",
		"anne@old.example": "anne@new.example",
		"x@host.local":     "x@host.local", // "a b c": no address
		"y@host.local":     "y@host.local", // "<>"
	} {
		if got := c.SenderAddr(in); got != want {
			t.Errorf("%q -> %q; want %q", in, got, want)
		}
	}
	set := &table.Set{}
	if _, err := Open(set, Maps{Sender: []string{"hash:testdata/revrw_canonical"}}, ""); err == nil ||
		!strings.Contains(err.Error(), "rewrite.sender_canonical_maps") || !strings.Contains(err.Error(), `"a b c"`) {
		t.Errorf("Open = %v; want the bad values refused", err)
	}
}
