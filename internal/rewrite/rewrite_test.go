package rewrite

import (
	"bytes"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/table"
)

func open(t *testing.T, spec string) *table.Table {
	t.Helper()
	tb, err := table.Open(spec)
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

func TestCanonicalAddr(t *testing.T) {
	c := &Canonical{
		Sender:    []Table{open(t, "inline:{ root@host.local=alerts@example.com, @old.example=@new.example, loop@x.example=loop2@x.example, loop2@x.example=loop@x.example }")},
		Recipient: []Table{open(t, "inline:{ bob@example.com=robert@example.com }")},
		Common:    []Table{open(t, "inline:{ alerts@example.com=ops@example.com, @chain.example=b@chain2.example }")},
		Delims:    "+",
	}
	for _, tc := range []struct {
		sender     bool
		addr, want string
	}{
		{true, "root@host.local", "ops@example.com"}, // sender map, then the common one
		{true, "anne@old.example", "anne@new.example"},
		{true, "anne+tag@old.example", "anne+tag@new.example"},
		{true, "", ""},
		{true, "loop@x.example", "loop@x.example"}, // a loop stops (maxRecursion), a result
		{true, "bob@example.com", "bob@example.com"},
		{false, "bob@example.com", "robert@example.com"},
		{false, "bob+news@example.com", "robert+news@example.com"},
		{false, "root@host.local", "root@host.local"},
		{false, "x@chain.example", "b@chain2.example"},
	} {
		got := c.RecipientAddr(tc.addr)
		if tc.sender {
			got = c.SenderAddr(tc.addr)
		}
		if tc.want == "loop@x.example" {
			if got != "loop@x.example" && got != "loop2@x.example" {
				t.Errorf("loop: %q", got)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("sender=%v %q -> %q; want %q", tc.sender, tc.addr, got, tc.want)
		}
	}
	var none *Canonical
	if none.SenderAddr("a@b") != "a@b" || none.Enabled() {
		t.Error("nil Canonical maps")
	}
}

func TestHeaderWriter(t *testing.T) {
	c := &Canonical{Sender: []Table{open(t, "inline:{ root@host.local=alerts@example.com }")},
		Recipient: []Table{open(t, "inline:{ a@b.example=z@b.example }")}}
	in := "Received: from x by y for <root@host.local>\r\n" +
		"From: \"root@host.local\" <ROOT@host.local>\r\n" +
		"To: xa@b.example, A <a@b.example>,\r\n\tother@c.example\r\n" +
		"Cc: undisclosed-recipients:;\r\n" +
		"Subject: root@host.local\r\n" +
		"Reply-To: root@host.local\r\n" +
		"\r\n" +
		"From: root@host.local\r\nbody\r\n"
	want := "Received: from x by y for <root@host.local>\r\n" +
		"From: \"root@host.local\" <alerts@example.com>\r\n" +
		"To: xa@b.example, A <z@b.example>,\r\n\tother@c.example\r\n" +
		"Cc: undisclosed-recipients:;\r\n" +
		"Subject: root@host.local\r\n" +
		"Reply-To: alerts@example.com\r\n" + // a sender field, as Postfix's header_opts.c has it
		"\r\n" +
		"From: root@host.local\r\nbody\r\n"
	for _, step := range []int{1, 7, 4096} {
		if got := writeInSteps(t, c, in, step); got != want {
			t.Errorf("writes of %d:\n%s\nwant\n%s", step, got, want)
		}
	}
	// A message that is all header, and one no table touches: unchanged.
	for _, msg := range []string{"From: root@host.local", "From: x@y.example\r\nTo: q@r.example\r\n\r\nbody"} {
		var out bytes.Buffer
		h := &HeaderWriter{W: &out, C: c}
		h.Write([]byte(msg))
		h.Close()
		if msg == "From: x@y.example\r\nTo: q@r.example\r\n\r\nbody" && out.String() != msg {
			t.Errorf("untouched message changed: %q", out.String())
		}
		if strings.HasPrefix(msg, "From: root") && out.String() != "From: alerts@example.com" {
			t.Errorf("header-only message: %q", out.String())
		}
	}
}

func FuzzHeaderWriter(f *testing.F) {
	f.Add("From: a <root@host.local>\r\nTo: x@y\r\n\r\nbody")
	f.Add("To: \"q\\\"\" <root@host.local>, root@host.local (c)\r\n\r\n")
	f.Fuzz(func(t *testing.T, msg string) {
		c := &Canonical{Sender: []Table{open(t, "inline:{ root@host.local=alerts@example.com }")},
			Common: []Table{open(t, "inline:{ @host.local=@example.com }")}}
		var out bytes.Buffer
		h := &HeaderWriter{W: &out, C: c}
		h.Write([]byte(msg))
		h.Close()
		end := headerEnd(msg)
		if end >= 0 && !strings.HasSuffix(out.String(), msg[end:]) {
			t.Fatalf("body changed: %q -> %q", msg, out.String())
		}
	})
}

// headerEnd is the offset where msg's header section ends: after its
// empty line, or where a line that is neither a field nor a field's
// continuation starts; -1 if it does not end.
func headerEnd(msg string) int {
	off := 0
	for line := range strings.Lines(msg) {
		if !strings.HasSuffix(line, "\n") {
			return -1
		}
		if line == "\r\n" || line == "\n" {
			return off + len(line)
		}
		if !inHeader([]byte(line), off == 0) {
			return off
		}
		off += len(line)
	}
	return -1
}

func TestTargetDomains(t *testing.T) {
	c := &Canonical{Sender: []Table{open(t, "inline:{ root@host.local=alerts@Example.com, @old.example=@new.example }")},
		Common: []Table{open(t, "inline:{ x@y.example=alerts@example.com }")}}
	got := c.TargetDomains()
	if strings.Join(got, " ") != "example.com new.example" && strings.Join(got, " ") != "new.example example.com" {
		t.Errorf("TargetDomains() = %q", got)
	}
	var none *Canonical
	if none.TargetDomains() != nil {
		t.Error("nil Canonical has target domains")
	}
}
