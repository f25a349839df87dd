package pickup

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/envelope"
	"github.com/relaykeeper/relaykeeper/internal/rewrite"
	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

const input = "From bounce@example.org Sat Nov 22 10:00:00 2026\n" +
	"From: Alice <alice@example.org>\nTo: bob@example.net,\n carol@example.net\nBcc: dave@example.net\n" +
	"Subject: hi\n\nbody\rline\n"

func TestParse(t *testing.T) {
	m := Parse([]byte(input))
	if got, want := m.Values("to"), []string{"bob@example.net, carol@example.net"}; !cmp.Equal(got, want) {
		t.Errorf("Values(to) = %q; want %q", got, want)
	}
	rcpts, err := m.HeaderRecipients()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range rcpts {
		got = append(got, a.String())
	}
	if want := []string{"bob@example.net", "carol@example.net", "dave@example.net"}; !cmp.Equal(got, want) {
		t.Errorf("HeaderRecipients = %q; want %q", got, want)
	}
	if a, err := m.DefaultSender("root", "host.example"); err != nil || a.String() != "alice@example.org" {
		t.Errorf("DefaultSender = %v, %v; want the From address", a, err)
	}
	if a, err := Parse([]byte("Subject: x\n\n")).DefaultSender("root", "host.example"); err != nil || a.String() != "root@host.example" {
		t.Errorf("DefaultSender without From = %v, %v; want root@host.example", a, err)
	}
	if _, err := Parse([]byte("To: <<<\n\n")).HeaderRecipients(); err == nil {
		t.Errorf("HeaderRecipients of a bad To = nil error")
	}
}

func TestSubmit(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	sender, _ := envelope.Parse("alice@example.org")
	id, err := Submit(sp, Parse([]byte(input)), Submission{Sender: sender, Recipients: []string{"bob@example.net"},
		Host: "host.example", UID: 1000, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	env, st, err := sp.Read(id)
	if err != nil || st != spool.Ready || env.From != "alice@example.org" || len(env.Recipients) != 1 {
		t.Fatalf("Read(%s) = %+v, %v, %v; want a ready message from alice to bob", id, env, st, err)
	}
	b, err := os.ReadFile(sp.ContentPath(id))
	if err != nil {
		t.Fatal(err)
	}
	content := string(b)
	for _, want := range []string{
		"Received: by host.example (relaykeeper, from userid 1000)\r\n\tid " + id + "\r\n\tfor <bob@example.net>;",
		"From: Alice <alice@example.org>\r\n",
		"Message-ID: <" + id + ".",
		"Date: Sun, 22 Nov 2026 10:00:00 +0000\r\n",
		"\r\n\r\nbody\r\nline\r\n", // a lone CR ends a line (package crlf)
	} {
		if !strings.Contains(content, want) {
			t.Errorf("content lacks %q:\n%s", want, content)
		}
	}
	if strings.Contains(content, "Bcc") || strings.Contains(content, "From bounce") {
		t.Errorf("content keeps Bcc or the mbox From line:\n%s", content)
	}
	if _, err := Submit(sp, Parse([]byte(input)), Submission{Now: now}); err == nil {
		t.Errorf("Submit without recipients = nil error")
	}
}

// TestSubmitAddsFrom: a message without a From field gets one naming the
// envelope sender, as Postfix's cleanup adds it to local mail (RFC 5322
// section 3.6 requires From; Gmail refuses mail without it).
func TestSubmitAddsFrom(t *testing.T) {
	sp, err := spool.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	sender, _ := envelope.Parse("cron@host.example")
	for _, tt := range []struct {
		sender envelope.Address
		want   string
	}{
		{sender, "\r\nFrom: cron@host.example\r\n"},
		{envelope.Address{}, "\r\nFrom: MAILER-DAEMON@host.example\r\n"},
	} {
		id, err := Submit(sp, Parse([]byte("Subject: x\n\nbody\n")), Submission{Sender: tt.sender,
			Recipients: []string{"bob@example.net"}, Host: "host.example", Now: now})
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(sp.ContentPath(id))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), tt.want) {
			t.Errorf("content lacks %q:\n%s", tt.want, b)
		}
	}
}

// TestSubmitCanonical: with canonical maps, the envelope sender, each
// recipient (with its original kept as ORCPT) and the header's addresses
// are mapped before the message is stored; smtp_generic_maps map them
// too, after the canonical maps (alice is first made alerts@host.local,
// then alerts@example.com).
func TestSubmitCanonical(t *testing.T) {
	for name, maps := range map[string]rewrite.Maps{
		"canonical": {Sender: []string{"inline:{ alice@example.org=alerts@example.com }"},
			Recipient: []string{"inline:{ bob@example.net=robert@example.net }"}},
		"generic": {Sender: []string{"inline:{ alice@example.org=alerts@host.local }"},
			Generic: []string{"inline:{ @host.local=@example.com, bob@example.net=robert@example.net }"}},
	} {
		t.Run(name, func(t *testing.T) {
			sp, err := spool.Open(t.TempDir(), nil)
			if err != nil {
				t.Fatal(err)
			}
			c, err := rewrite.Open(&table.Set{}, maps, "")
			if err != nil {
				t.Fatal(err)
			}
			sender, _ := envelope.Parse("alice@example.org")
			id, err := Submit(sp, Parse([]byte(input)), Submission{Sender: sender, Recipients: []string{"bob@example.net"},
				Host: "host.example", Now: time.Now(), Canonical: c})
			if err != nil {
				t.Fatal(err)
			}
			env, _, err := sp.Read(id)
			if err != nil || env.From != "alerts@example.com" || len(env.Recipients) != 1 ||
				env.Recipients[0].Addr != "robert@example.net" || env.Recipients[0].ORCPT != "rfc822;bob@example.net" {
				t.Fatalf("Read(%s) = %+v, %v; want alerts@example.com -> robert@example.net, ORCPT bob", id, env, err)
			}
			if b, _ := os.ReadFile(sp.ContentPath(id)); !strings.Contains(string(b), "From: Alice <alerts@example.com>\r\n") {
				t.Errorf("content's From not mapped:\n%s", b)
			}
		})
	}
}
