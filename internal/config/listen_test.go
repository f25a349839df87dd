package config

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSMTPListens(t *testing.T) {
	c := Default()
	c.SMTP.Port = 2525
	if got, want := c.SMTPListens(), []Listen{{RoleSMTP, ":2525"}}; !cmp.Equal(got, want) {
		t.Errorf("SMTPListens() = %v; want %v", got, want)
	}
	c.SMTP.Interfaces = []string{"127.0.0.1", "submission=[::1]:587", "smtps=::1"}
	want := []Listen{{RoleSMTP, "127.0.0.1:2525"}, {RoleSubmission, "[::1]:587"}, {RoleSMTPS, "[::1]:2525"}}
	if got := c.SMTPListens(); !cmp.Equal(got, want) {
		t.Errorf("SMTPListens() = %v; want %v", got, want)
	}
}

func TestDialable(t *testing.T) {
	for in, want := range map[string]string{
		"[::]:2525": "127.0.0.1:2525", "0.0.0.0:25": "127.0.0.1:25", ":25": "127.0.0.1:25",
		"127.0.0.1:2525": "127.0.0.1:2525", "[::1]:25": "[::1]:25", "192.0.2.1:25": "192.0.2.1:25",
	} {
		if got := Dialable(in); got != want {
			t.Errorf("Dialable(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestWriteWhereToLook(t *testing.T) {
	c := Default()
	c.Forward.AtStartup = true // by MX
	var b strings.Builder
	c.WriteWhereToLook(&b, Running{Version: "1.0", Mode: c.Describe("", true), Addrs: []string{"[::]:2525", "submission=[::]:587"},
		Spool: "/var/spool/relaykeeper"})
	for _, want := range []string{
		"relaykeeper 1.0 is running: store and forward to each recipient's domain by MX.\n",
		"  SMTP       submission=[::]:587\n",
		"try: swaks --server 127.0.0.1:2525 --to YOUR-ADDRESS\n",
		"  dashboard  off",
		"(relaykeeper queue list --spool-dir /var/spool/relaykeeper)\n",
		"  mail log   here, one line per event\n",
		"Most home and cloud networks block port 25",
		"Stop with Ctrl-C",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("WriteWhereToLook wrote\n%s\nwithout %q", b.String(), want)
		}
	}
}

// TestRevNew4ListensOnce: an address given twice for the same role, as
// E-MailRelay's "--interface 127.0.0.1,smtp=lo" does (lo is 127.0.0.1 and
// ::1), is listened on once. relaykeeper bound it twice and refused to
// start: "cannot listen on 127.0.0.1:25: address already in use", which
// sent the user looking for another mail server. One address for two
// roles is a configuration problem, said so.
func TestRevNew4ListensOnce(t *testing.T) {
	c := Default()
	c.SMTP.Port = 2525
	c.SMTP.Interfaces = []string{"127.0.0.1", "smtp=127.0.0.1", "127.0.0.1:2525", "[::1]", "::1"}
	want := []Listen{{RoleSMTP, "127.0.0.1:2525"}, {RoleSMTP, "[::1]:2525"}}
	if got := c.SMTPListens(); !cmp.Equal(got, want) {
		t.Errorf("SMTPListens() = %v; want %v", got, want)
	}
	c.SMTP.Interfaces = []string{"127.0.0.1:2525", "reinject=127.0.0.1:2525"}
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), `smtp.interfaces: 127.0.0.1:2525 is given for both smtp and reinject`) {
		t.Errorf("Validate with one address for two roles: %v; want it refused", err)
	}
}

// TestRevNew4LinkLocalInterface: an IPv6 link-local address with its zone,
// which E-MailRelay's reference gives as an --interface example
// ("fe80::1%1") and says must have one, is accepted, bare, in brackets
// and with a port. It was refused: "want an address, address:port or
// name".
func TestRevNew4LinkLocalInterface(t *testing.T) {
	for _, a := range []string{"fe80::1%1", "fe80::1%eth0", "[fe80::1%eth0]", "[fe80::1%1]:2525", "smtp=fe80::1%lo"} {
		c := Default()
		c.SMTP.Interfaces = []string{a}
		if err := c.Validate(); err != nil {
			t.Errorf("--interface %s: %v; want it accepted", a, err)
		}
	}
	c := Default()
	c.SMTP.Port = 2525
	c.SMTP.Interfaces = []string{"fe80::1%1"}
	if got, want := c.SMTPListens(), []Listen{{RoleSMTP, "[fe80::1%1]:2525"}}; !cmp.Equal(got, want) {
		t.Errorf("SMTPListens() = %v; want %v", got, want)
	}
}
