package config

import (
	"slices"
	"testing"
)

// frontendAddrsFor applies args' switches to the defaults and returns the
// admin and POP3 listen addresses.
func frontendAddrsFor(t *testing.T, iface ...string) (admin, pop []string) {
	t.Helper()
	args := []string{"--as-server", "--spool-dir", t.TempDir()}
	for _, i := range iface {
		args = append(args, "--interface", i)
	}
	cl, err := ParseSwitches(args)
	if err != nil {
		t.Fatalf("ParseSwitches(%q) = %v", args, err)
	}
	c := Default()
	for _, apply := range cl.actions {
		apply(&c)
	}
	return c.FrontendAddrs("admin", "127.0.0.1", 10026), c.FrontendAddrs("pop", "", 110)
}

// TestRev25AdminEntryKeepsAdminOffPlainAddresses: docs/admin.md said
// "--interface admin=ADDR: the line protocol on ADDR instead", and
// operators of a relay open to the world ("--interface 0.0.0.0
// --interface admin=127.0.0.1 --remote-clients") kept the admin port on
// loopback that way. 2102f4c1 added the plain entries beside admin's own,
// as E-MailRelay does: the admin port then listened on 0.0.0.0 too (served
// to the world with a password file and --remote-clients; without one the
// relay refused to start). POP3 keeps E-MailRelay's union.
func TestRev25AdminEntryKeepsAdminOffPlainAddresses(t *testing.T) {
	admin, pop := frontendAddrsFor(t, "192.0.2.1", "admin=127.0.0.1", "pop=127.0.0.3")
	if want := []string{"127.0.0.1:10026"}; !slices.Equal(admin, want) {
		t.Errorf("--interface 192.0.2.1,admin=127.0.0.1: admin listens on %q; want %q", admin, want)
	}
	if want := []string{"127.0.0.3:110", "192.0.2.1:110"}; !slices.Equal(pop, want) {
		t.Errorf("--interface 192.0.2.1,pop=127.0.0.3: POP3 listens on %q; want %q", pop, want)
	}
}

// TestRev25SMTPEntryIsSMTPsAlone: an smtp= entry is SMTP's alone (E-MailRelay;
// 2102f4c1 says so), but with no unprefixed entry the admin port and POP3
// fell back to the SMTP addresses, smtp= ones included: "--interface
// smtp=192.0.2.1 --admin 10026" put the admin port on 192.0.2.1, off
// loopback (and refused to start without a password).
func TestRev25SMTPEntryIsSMTPsAlone(t *testing.T) {
	admin, pop := frontendAddrsFor(t, "smtp=192.0.2.1")
	if want := []string{"127.0.0.1:10026"}; !slices.Equal(admin, want) {
		t.Errorf("--interface smtp=192.0.2.1: admin listens on %q; want %q", admin, want)
	}
	if want := []string{":110"}; !slices.Equal(pop, want) {
		t.Errorf("--interface smtp=192.0.2.1: POP3 listens on %q; want %q", pop, want)
	}
}
