package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestER25ForwardToWithClientOrProxy: --as-client and --as-proxy name the
// smarthost themselves, and E-MailRelay refuses --forward-to beside them
// ("--forward-to cannot be used with --as-client or --as-proxy").
// relaykeeper took whichever came last and quietly dropped the other
// address: "--as-client new:25 --forward-to old:25" forwarded to old:25.
func TestER25ForwardToWithClientOrProxy(t *testing.T) {
	file := filepath.Join(t.TempDir(), "emailrelay.conf")
	if err := os.WriteFile(file, []byte("forward-to 127.0.0.1:2525\nspool-dir /tmp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"--as-client", "127.0.0.1:25", "--forward-to", "127.0.0.1:2525"},
		{"--forward-to", "127.0.0.1:2525", "--as-client", "127.0.0.1:25"},
		{"-o", "127.0.0.1:2525", "-y", "127.0.0.1:25"},
		{"--as-proxy", "127.0.0.1:25", "--forward-to=127.0.0.1:2525"},
		{"--as-client", "127.0.0.1:25", file},
	} {
		_, err := ParseSwitches(args)
		if err == nil || !strings.Contains(err.Error(), "forward-to") || !strings.Contains(err.Error(), "-as-") && !strings.Contains(err.Error(), "-y") {
			t.Errorf("ParseSwitches(%q) = %v; want an error naming --forward-to and the mode", args, err)
		}
	}
	// Each alone is as before, and so is --as-server with --forward-to.
	for _, args := range [][]string{
		{"--as-client", "127.0.0.1:25"},
		{"--as-proxy", "127.0.0.1:25"},
		{"--as-server", "--forward-to", "127.0.0.1:25"},
		{"--forward-to", "127.0.0.1:25", "--as-server"},
	} {
		if _, err := ParseSwitches(args); err != nil {
			t.Errorf("ParseSwitches(%q) = %v; want no error", args, err)
		}
	}
}

// TestER25InterfaceUnqualifiedForAll: E-MailRelay applies an --interface
// entry without a prefix to every server, beside the entries a server has
// of its own: "--interface 127.0.0.1,pop=192.0.2.1" puts POP3 on both
// addresses (its Configuration::listeningNames keeps unprefixed entries for
// every protocol). relaykeeper let a pop= or admin= entry replace the
// unprefixed ones, so POP3 clients on 127.0.0.1 were refused a connection.
// An smtp= entry is SMTP's alone, there as here; relaykeeper's own
// pop=ADDR:PORT (E-MailRelay's entries have no port) still names the one
// place POP3 listens.
func TestER25InterfaceUnqualifiedForAll(t *testing.T) {
	for _, tt := range []struct {
		iface      []string
		pop, admin []string
	}{
		{[]string{"127.0.0.1,pop=127.0.0.3"}, []string{"127.0.0.3:110", "127.0.0.1:110"}, []string{"127.0.0.1:10026"}},
		{[]string{"pop=127.0.0.3", "127.0.0.1:2525"}, []string{"127.0.0.3:110", "127.0.0.1:110"}, []string{"127.0.0.1:10026"}},
		// The admin port's own entries alone (TestRev25AdminEntryKeepsAdminOffPlainAddresses).
		{[]string{"127.0.0.1,admin=127.0.0.4,pop=127.0.0.1"}, []string{"127.0.0.1:110"}, []string{"127.0.0.4:10026"}},
		{[]string{"127.0.0.1,smtp=127.0.0.2,pop=127.0.0.3"}, []string{"127.0.0.3:110", "127.0.0.1:110"}, []string{"127.0.0.1:10026"}},
		{[]string{"127.0.0.1,smtp=127.0.0.2"}, []string{"127.0.0.1:110"}, []string{"127.0.0.1:10026"}},
		{[]string{"127.0.0.2"}, []string{"127.0.0.2:110"}, []string{"127.0.0.2:10026"}},
		{[]string{"127.0.0.1", "pop=127.0.0.1:110"}, []string{"127.0.0.1:110"}, []string{"127.0.0.1:10026"}},
		// relaykeeper's pop=ADDR:PORT names the one place.
		{[]string{"127.0.0.1", "pop=127.0.0.3:1110"}, []string{"127.0.0.3:1110"}, []string{"127.0.0.1:10026"}},
		{[]string{"submission=127.0.0.1:587,pop=127.0.0.3"}, []string{"127.0.0.3:110"}, []string{"127.0.0.1:10026"}},
	} {
		args := []string{"--as-server", "--spool-dir", t.TempDir()}
		for _, i := range tt.iface {
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
		if got := c.FrontendAddrs("pop", "", 110); !slices.Equal(got, tt.pop) {
			t.Errorf("--interface %q: FrontendAddrs(pop) = %q; want %q", tt.iface, got, tt.pop)
		}
		if got := c.FrontendAddrs("admin", "127.0.0.1", 10026); !slices.Equal(got, tt.admin) {
			t.Errorf("--interface %q: FrontendAddrs(admin) = %q; want %q", tt.iface, got, tt.admin)
		}
	}
}

// TestER25SMTPConfigLetters: E-MailRelay's -Z is --server-smtp-config and
// -c is --client-smtp-config. relaykeeper refused the long names saying why
// and what to do, but the letters only as "unknown switch -Z".
func TestER25SMTPConfigLetters(t *testing.T) {
	for _, tt := range []struct{ letter, long string }{{"-Z", "server-smtp-config"}, {"-c", "client-smtp-config"}} {
		_, err := ParseSwitches([]string{tt.letter, "+chunking"})
		_, errLong := ParseSwitches([]string{"--" + tt.long, "+chunking"})
		if err == nil || errLong == nil || !strings.Contains(err.Error(), "E-MailRelay's switch is not supported") ||
			strings.TrimPrefix(err.Error(), tt.letter) != strings.TrimPrefix(errLong.Error(), "--"+tt.long) {
			t.Errorf("ParseSwitches(%s) = %v; want %v, naming %s", tt.letter, err, errLong, tt.letter)
		}
	}
}

// TestER25RepeatedDNSBL: E-MailRelay's --dnsbl may be repeated (and its
// configuration file's dnsbl line), the values joined with commas, so
// "dnsbl 1.1.1.1:53,1000,1,zen.example" and "dnsbl bl.example" check both
// blocklists. relaykeeper kept the last and dropped the others: a client
// listed only on zen.example got in.
func TestER25RepeatedDNSBL(t *testing.T) {
	file := filepath.Join(t.TempDir(), "emailrelay.conf")
	if err := os.WriteFile(file, []byte("dnsbl 127.0.0.1:53,1000,1,zen.example\ndnsbl bl.example\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const want = "127.0.0.1:53,1000,1,zen.example,bl.example"
	for _, args := range [][]string{
		{"--dnsbl", "127.0.0.1:53,1000,1,zen.example", "--dnsbl", "bl.example"},
		{file},
	} {
		cl, err := ParseSwitches(args)
		if err != nil {
			t.Fatalf("ParseSwitches(%q) = %v", args, err)
		}
		c := Default()
		c.Policy.DNSBL = "from.the.file" // a --config file's, replaced
		for _, apply := range cl.actions {
			apply(&c)
		}
		if c.Policy.DNSBL != want {
			t.Errorf("ParseSwitches(%q): policy.dnsbl = %q; want %q", args, c.Policy.DNSBL, want)
		}
	}
}
