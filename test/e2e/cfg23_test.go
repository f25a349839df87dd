package e2e

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// cfg23Config writes a TOML file that listens on a free loopback port and
// spools under the test's directory, then body (keys of other sections).
func cfg23Config(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	text := "[smtp]\nport = " + strconv.Itoa(harness.FreePort(t)) + "\ninterfaces = [\"127.0.0.1\"]\n" +
		"[spool]\ndir = \"" + filepath.Join(dir, "spool") + "\"\n" + body
	return writeFile(t, dir, "relaykeeper.toml", text, 0o644)
}

// cfg23Refused checks that --check and a start both refuse the
// configuration file with exit status 2, each saying want (after the
// file's name).
func cfg23Refused(t *testing.T, conf, want string) {
	t.Helper()
	bin := harness.Binary(t)
	for _, args := range [][]string{{"--check", "--config", conf}, {"--config", conf}} {
		stdout, stderr, code := runBinary(t, bin, "", args...)
		if code != 2 || !strings.Contains(stderr, conf+want) {
			t.Errorf("relaykeeper %s: exit %d, %q %q; want exit 2 and %q", strings.Join(args, " "), code, stdout, stderr, conf+want)
		}
	}
}

// TestCfg23CheckPidFile: a pid file the relay cannot write (a directory, a
// directory two levels deep) stops the start, with the file and line of
// process.pid_file; --check used to say "the relay would start".
func TestCfg23CheckPidFile(t *testing.T) {
	dir := t.TempDir()
	cfg23Refused(t, cfg23Config(t, "[process]\npid_file = \""+dir+"\"\n"),
		":7: process.pid_file: "+dir+": cannot write the pid file: open "+dir+": is a directory")
	deep := filepath.Join(dir, "a", "b", "relay.pid")
	cfg23Refused(t, cfg23Config(t, "[process]\npid_file = \""+deep+"\"\n"),
		":7: process.pid_file: "+deep+": cannot make the pid file's directory")
}

// TestCfg23ClientTLSWithoutTLSLine: client TLS settings in [tls] without
// client TLS turned on are refused at the line of the setting given; the
// message used to name no file, line or key, only switches the file's
// reader had not used.
func TestCfg23ClientTLSWithoutTLSLine(t *testing.T) {
	cfg23Refused(t, cfg23Config(t, "[tls]\nclient_server_name = \"mx.example\"\n"),
		":7: tls.client_server_name: client TLS settings given without --client-tls, --client-tls-required or --client-tls-connection (tls.client, tls.client_required or tls.client_connection)")
}

// TestCfg23CheckListenName: an smtp.interfaces entry that is neither an IP
// address, nor a network interface of this host, nor a host name is
// refused at its line by --check and the start alike; --check used to say
// "the relay would start", and the start failed at the listen with no file,
// line or key.
func TestCfg23CheckListenName(t *testing.T) {
	dir := t.TempDir()
	conf := writeFile(t, dir, "relaykeeper.toml", "[smtp]\nport = "+strconv.Itoa(harness.FreePort(t))+
		"\ninterfaces = [\"no-such-interface.invalid\"]\n[spool]\ndir = \""+filepath.Join(dir, "spool")+"\"\n", 0o644)
	cfg23Refused(t, conf, `:3: smtp.interfaces: "no-such-interface.invalid" is not an IP address, a network interface of this host or a host name`)
	bin := harness.Binary(t)
	if out, errOut, code := runBinary(t, bin, "", "--check", "--spool-dir", filepath.Join(dir, "spool"), "--interface", "localhost,lo"); code != 0 {
		t.Errorf("--interface localhost,lo: exit %d, %q %q; want 0", code, out, errOut)
	}
}

// TestCfg23CheckPorts: a net:, spam: or spam-edit: filter, a network
// verifier or a policy service on a port no connection can use (99999, 0,
// a service name that is none) is refused by --check and the start at its
// line; they used to pass both, and every message then met the failure.
func TestCfg23CheckPorts(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{"[filter]\nserver = [\"net:127.0.0.1:99999\"]\n", `:7: filter.server: filter: "net:127.0.0.1:99999": want HOST:PORT or a unix socket path: port 99999 is out of range 1-65535`},
		{"[filter]\nclient = [\"spam-edit:127.0.0.1:0\"]\n", `:7: filter.client: filter: "spam-edit:127.0.0.1:0": want HOST:PORT or a unix socket path: port 0 is out of range 1-65535`},
		{"[policy]\naddress_verifier = \"net:127.0.0.1:notaport\"\n", `:7: policy.address_verifier: verify: bad network verifier address "127.0.0.1:notaport": unknown port or service "notaport"`},
		{"[policy]\nrecipient_restrictions = [\"check_policy_service inet:127.0.0.1:70000\"]\n", `:7: policy.recipient_restrictions: "check_policy_service inet:127.0.0.1:70000": "inet:127.0.0.1:70000": want inet:host:port: port 70000 is out of range 1-65535`},
	} {
		cfg23Refused(t, cfg23Config(t, c.body), c.want)
	}
}

// TestCfg23DNSServer: a dns_server that is no IP:PORT ("nonsense", a bare
// address, port 99999) is refused at its line by --check and the start; it
// used to pass both, and each lookup (every MX of the routing, every DNSBL
// and client-name query) then failed. --client-names-server with a bare
// address took it as port 25.
func TestCfg23DNSServer(t *testing.T) {
	cfg23Refused(t, cfg23Config(t, "[routing]\ndns_server = \"nonsense\"\n"),
		`:7: routing.dns_server: "nonsense": want the DNS server's IP:PORT, as 127.0.0.1:53`)
	cfg23Refused(t, cfg23Config(t, "[policy]\ndns_server = \"127.0.0.1:99999\"\n"),
		`:7: policy.dns_server: "127.0.0.1:99999": want the DNS server's IP:PORT, as 127.0.0.1:53: port 99999 is out of range 1-65535`)
	dir := t.TempDir()
	out, errOut, code := runBinary(t, harness.Binary(t), "", "--check", "--spool-dir", filepath.Join(dir, "spool"), "--client-names", "--client-names-server", "127.0.0.1")
	if want := `--client-names-server: "127.0.0.1": want the DNS server's IP:PORT`; code != 2 || !strings.Contains(errOut, want) {
		t.Errorf("--client-names-server 127.0.0.1: exit %d, %q %q; want exit 2 and %q", code, out, errOut, want)
	}
}

// TestCfg23ContentFilter: a routing.content_filter whose port no
// connection can use (99999, 0) or whose host is no name is refused at its
// line by --check and the start; it used to pass both, and every message
// then failed on its way to the filter.
func TestCfg23ContentFilter(t *testing.T) {
	cfg23Refused(t, cfg23Config(t, "[routing]\ncontent_filter = \"scan:[127.0.0.1]:99999\"\n"),
		`:7: routing.content_filter: "scan:[127.0.0.1]:99999": want [TRANSPORT:]HOST[:PORT], as scan:[127.0.0.1]:10025: port 99999 is out of range 1-65535`)
	cfg23Refused(t, cfg23Config(t, "[routing]\ncontent_filter = \"scan host\"\n"),
		`:7: routing.content_filter: "scan host": want [TRANSPORT:]HOST[:PORT], as scan:[127.0.0.1]:10025: "scan host" is not a host name or address`)
}
