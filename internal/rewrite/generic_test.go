package rewrite

import (
	"bytes"
	"slices"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

func TestGeneric(t *testing.T) {
	c, err := Open(&table.Set{}, Maps{
		Sender:  []string{"inline:{ cron@host.local=root@host.local }"},
		Generic: []string{"inline:{ root@host.local=alerts@example.com, alerts@example.com=loop@example.com, @old.example=@new.example }"},
	}, "+")
	if err != nil {
		t.Fatal(err)
	}
	for in, want := range map[string]string{
		"root@host.local":       "alerts@example.com", // one lookup: not on to loop@
		"bob+x@old.example":     "bob+x@new.example",
		"ROOT@host.local.":      "alerts@example.com",
		"other@else.example":    "other@else.example",
		"":                      "",
		"@a,@b:root@host.local": "alerts@example.com",
	} {
		if got := c.GenericAddr(in); got != want {
			t.Errorf("GenericAddr(%q) = %q; want %q", in, got, want)
		}
	}
	// The envelope's canonical mapping does not include the generic one:
	// that comes last, after virtual aliases (Generic).
	if got := c.SenderAddr("cron@host.local"); got != "root@host.local" {
		t.Errorf("SenderAddr = %q; want the canonical map's root@host.local", got)
	}
	from, rs := c.Generic("root@host.local", []spool.Recipient{
		{Addr: "a@old.example", Status: spool.Pending}, {Addr: "a@new.example", Status: spool.Pending, Notify: "SUCCESS"},
		{Addr: "sent@old.example", Status: spool.Sent}})
	if from != "alerts@example.com" || len(rs) != 2 || rs[0].Addr != "a@new.example" || rs[0].ORCPT != "rfc822;a@old.example" || rs[1].Addr != "sent@old.example" {
		t.Errorf("Generic = %q, %+v; want the sender mapped, the two a@ merged with the first's ORCPT, a sent one left", from, rs)
	}
	if d := c.TargetDomains(); !slices.Contains(d, "example.com") || !slices.Contains(d, "new.example") {
		t.Errorf("TargetDomains = %q; want the generic map's targets, never blocked", d)
	}

	// GenericOnly: a client whose header the canonical maps leave alone.
	for _, tc := range []struct {
		only bool
		want string
	}{{true, "From: <cron@host.local>\r\nTo: x@new.example\r\n\r\ncron@host.local\r\n"},
		{false, "From: <alerts@example.com>\r\nTo: x@new.example\r\n\r\ncron@host.local\r\n"}} {
		var b bytes.Buffer
		h := &HeaderWriter{W: &b, C: c, GenericOnly: tc.only}
		h.Write([]byte("From: <cron@host.local>\r\nTo: x@old.example\r\n\r\ncron@host.local\r\n"))
		h.Close()
		// GenericOnly: cron@ is no generic key, so it stays; otherwise
		// canonical makes it root@ and generic alerts@.
		if b.String() != tc.want {
			t.Errorf("GenericOnly %v: %q; want %q", tc.only, b.String(), tc.want)
		}
	}
}
