package config

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// E-MailRelay's --interface takes a network interface's name ("eth0") for
// all its addresses, or "eth0-ipv4" / "eth0-ipv6" for those of one family.
// relaykeeper looked the name up in the DNS instead ("lookup lo on
// 10.0.0.53:53: no such host"), or listened wherever a search domain made
// the name point.
func TestRevERInterfaceNames(t *testing.T) {
	lo := loopbackName(t)
	c := Default()
	c.SMTP.Port = 2525
	for _, tt := range []struct {
		entry string
		want  []Listen
	}{
		{lo + "-ipv4", []Listen{{RoleSMTP, "127.0.0.1:2525"}}},
		{"submission=" + lo + "-ipv4:587", []Listen{{RoleSubmission, "127.0.0.1:587"}}},
		{lo, []Listen{{RoleSMTP, "127.0.0.1:2525"}, {RoleSMTP, "[::1]:2525"}}},
		{lo + "-ipv6", []Listen{{RoleSMTP, "[::1]:2525"}}},
		{"localhost", []Listen{{RoleSMTP, "localhost:2525"}}},
	} {
		c.SMTP.Interfaces = []string{tt.entry}
		got := c.SMTPListens()
		if !hasIPv6Loopback(t, lo) {
			tt.want = slices.DeleteFunc(tt.want, func(l Listen) bool { return l.Addr[0] == '[' })
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("--interface %s: SMTPListens() = %v; want %v", tt.entry, got, tt.want)
		}
	}
	c.SMTP.Interfaces = []string{lo + "-ipv4"}
	if got, want := c.FrontendAddrs("pop", "", 110), []string{"127.0.0.1:110"}; !slices.Equal(got, want) {
		t.Errorf("--interface %s-ipv4: FrontendAddrs(pop) = %v; want %v", lo, got, want)
	}
	c.OtherInterfaces = map[string][]string{"admin": {lo + "-ipv4"}}
	if got, want := c.FrontendAddrs("admin", "", 10026), []string{"127.0.0.1:10026"}; !slices.Equal(got, want) {
		t.Errorf("--interface admin=%s-ipv4: FrontendAddrs(admin) = %v; want %v", lo, got, want)
	}
	if err := checkListenAddr(lo + "-ipv4"); err != nil {
		t.Errorf("checkListenAddr(%s-ipv4) = %v", lo, err)
	}
	// E-MailRelay's inherited descriptors are refused naming them, not
	// looked up in the DNS.
	if err := checkListenAddr("fd#3"); err == nil || !strings.Contains(err.Error(), "fd#") {
		t.Errorf("checkListenAddr(fd#3) = %v; want refused as not supported", err)
	}
}

// loopbackName is the name of the interface with 127.0.0.1 ("lo").
func loopbackName(t *testing.T) string {
	ifs, err := net.Interfaces()
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range ifs {
		addrs, _ := i.Addrs()
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(net.IPv4(127, 0, 0, 1)) {
				return i.Name
			}
		}
	}
	harness.Missing(t, "no interface with 127.0.0.1")
	return ""
}

func hasIPv6Loopback(t *testing.T, name string) bool {
	i, err := net.InterfaceByName(name)
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := i.Addrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(net.IPv6loopback) {
			return true
		}
	}
	return false
}

// E-MailRelay's --syslog takes an optional facility (--syslog=local0, or
// "syslog mail" in its configuration file); relaykeeper leaves syslog to
// its supervisor and ignores the switch, but refused the facility with
// "want true or false". A facility that is none is still refused, naming
// the switch.
func TestRevERSyslogFacility(t *testing.T) {
	for _, args := range [][]string{{"--syslog"}, {"--syslog=local0"}, {"-k"}, {"--syslog=mail"}, {"--syslog=false"}} {
		if _, err := ParseSwitches(append([]string{"--as-server"}, args...)); err != nil {
			t.Errorf("ParseSwitches(%v) = %v; want it accepted", args, err)
		}
	}
	if _, err := ParseSwitches([]string{"--as-server", "--syslog=nosuch"}); err == nil || !strings.Contains(err.Error(), "--syslog") {
		t.Errorf("ParseSwitches(--syslog=nosuch) = %v; want an error naming --syslog", err)
	}
	f := filepath.Join(t.TempDir(), "emailrelay.conf")
	os.WriteFile(f, []byte("as-server\nsyslog mail\n"), 0o644)
	if _, err := ParseSwitches([]string{f}); err != nil {
		t.Errorf("ParseSwitches with 'syslog mail' in %s: %v", f, err)
	}
}
