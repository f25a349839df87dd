package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// cfg19Start starts "relaykeeper --as-server" on a free loopback port with
// the TOML file text and the extra switches, and returns the file's path,
// the exit status and standard error. A relay still running after a few
// seconds has started: it is stopped and the status is -1.
func cfg19Start(t *testing.T, text string, args ...string) (cfg string, code int, stderr string) {
	t.Helper()
	cfg = writeFile(t, t.TempDir(), "relaykeeper.toml", text, 0o644)
	args = append([]string{"--as-server", "--interface", "127.0.0.1", "--port", strconv.Itoa(harness.FreePort(t)),
		"--spool-dir", t.TempDir(), "--config", cfg}, args...)
	p := harness.Start(t, harness.Binary(t), args...)
	code, err := p.Wait(4 * time.Second)
	if err != nil {
		p.Kill()
		_, _ = p.Wait(5 * time.Second)
		code = -1
	}
	return cfg, code, p.Stderr()
}

// cfg19Refused fails the test unless the relay refused to start with the
// TOML file text, naming the file and line (FILE:LINE) and every one of
// words on standard error.
func cfg19Refused(t *testing.T, text string, line int, words ...string) {
	t.Helper()
	cfg, code, out := cfg19Start(t, text)
	want := append([]string{cfg + ":" + strconv.Itoa(line) + ": "}, words...)
	for _, w := range want {
		if code <= 0 || !strings.Contains(out, w) {
			t.Errorf("%q: exit %d, stderr %q; want a refusal saying %q", text, code, out, want)
			return
		}
	}
}

// TestCfg19WholeInternetTrusted: mynetworks = ["0.0.0.0/0"] (or ::/0, or
// the same line in a mynetworks file) trusts every client on the Internet
// to relay anywhere: with --remote-clients, an open relay. It started
// without a word; it is refused at its line, as an unknown key is.
func TestCfg19WholeInternetTrusted(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "mynetworks")
	if err := os.WriteFile(file, []byte("127.0.0.0/8\n0.0.0.0/0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, nets := range []string{`"0.0.0.0/0"`, `"127.0.0.0/8", "::/0"`, `"[::]/0"`} {
		cfg19Refused(t, "[policy]\n# trusted\nmynetworks = ["+nets+"]\n", 3, "policy.mynetworks", "open relay")
	}
	if _, code, out := cfg19Start(t, "[policy]\nmynetworks = ["+strconv.Quote(file)+"]\n"); code <= 0 || !strings.Contains(out, file+":2: ") || !strings.Contains(out, "open relay") {
		t.Errorf("0.0.0.0/0 in a mynetworks file: exit %d, stderr %q; want a refusal naming %s:2", code, out, file)
	}
	// Excluding the whole Internet ahead of the trusted networks is fine.
	if _, code, out := cfg19Start(t, "[policy]\nmynetworks = [\"!192.0.2.1\", \"127.0.0.0/8\"]\n"); code != -1 {
		t.Errorf("mynetworks with a negated address: exit %d, stderr %q; want it to start", code, out)
	}
}

// TestCfg19ListFileUnreadable: a mynetworks or relay_domains file that
// cannot be read to its end (a directory, a line over 64 KiB) was taken as
// empty, or as the lines before it: trusted clients or the relay's own
// domains were refused with no word of why. It is refused at start-up,
// naming the file.
func TestCfg19ListFileUnreadable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	long := writeFile(t, dir, "relay_domains", "a.example "+strings.Repeat("b", 70000)+".example\nrelay.example\n", 0o644)
	for _, tc := range []struct{ key, file string }{
		{"mynetworks", dir}, {"relay_domains", dir}, {"relay_domains", long},
	} {
		_, code, out := cfg19Start(t, "[policy]\n"+tc.key+" = ["+strconv.Quote(tc.file)+"]\n")
		if code <= 0 || !strings.Contains(out, tc.file) {
			t.Errorf("%s = [%q]: exit %d, stderr %q; want a refusal naming the file", tc.key, tc.file, code, out)
		}
	}
}

// TestCfg19FileErrorsNameTheLine: a file named in the configuration that
// cannot be opened was reported without the configuration's file and line
// for these keys ("header/body checks: table: open ...", "routing: route:
// transport_maps: ...", "--dnsbl: ..." for a key set in the file, and
// "policy.mail_restrictions", a key nobody wrote, for enforce.sender_access),
// unlike the others. Each now names FILE:LINE and its key.
func TestCfg19FileErrorsNameTheLine(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	gone := filepath.Join(dir, "gone")
	fwd := "[forward]\nto = \"127.0.0.1:9\"\n"
	for _, tc := range []struct {
		text string
		line int
		key  string
	}{
		{"[policy]\n# domains\nrelay_domains = [" + strconv.Quote(gone) + "]\n", 3, "policy.relay_domains"},
		{"[policy]\nrelay_recipient_maps = [\"hash:" + gone + "\"]\n", 2, "policy.relay_recipient_maps"},
		{"[policy]\nheader_checks = \"pcre:" + gone + "\"\n", 2, "policy.header_checks"},
		{"[policy]\nbody_checks = \"regexp:" + gone + "\"\n", 2, "policy.body_checks"},
		{"[policy]\naddress_verifier = \"net:nohost\"\n", 2, "policy.address_verifier"},
		{"[policy]\ndnsbl = \"zen.example,x,5s\"\n", 2, "policy.dnsbl"},
		{"[auth]\nsender_login_maps = " + strconv.Quote(gone) + "\n", 2, "auth.sender_login_maps"},
		{fwd + "[routing]\ntransport_maps = [\"hash:" + gone + "\"]\n", 4, "routing.transport_maps"},
		{fwd + "[auth]\nsmtp_sasl_password_maps = [\"hash:" + gone + "\"]\n", 4, "auth.smtp_sasl_password_maps"},
		{fwd + "[enforce]\nsender_access = " + strconv.Quote(dir) + "\n", 4, "enforce.sender_access"},
		{"[dkim]\ndomain = \"example.com\"\nselector = \"s1\"\nkey = " + strconv.Quote(gone) + "\n", 4, "dkim.key"},
	} {
		cfg19Refused(t, tc.text, tc.line, tc.key)
	}
}

// TestCfg19HelpCommand: "relaykeeper help" and "relaykeeper help queue",
// as git, go and docker take them, were an unknown command "help"; they
// print the page that --help prints.
func TestCfg19HelpCommand(t *testing.T) {
	t.Parallel()
	for _, tc := range [][2][]string{
		{{"help"}, {"--help"}},
		{{"help", "queue"}, {"queue", "--help"}},
		{{"help", "postfix-enforcer"}, {"postfix-enforcer", "--help"}},
	} {
		out, errOut, code := opsCmd(t, "", tc[0]...)
		want, _, _ := opsCmd(t, "", tc[1]...)
		if code != 0 || out != want || want == "" {
			t.Errorf("relaykeeper %q: exit %d, stderr %q, stdout %.60q; want relaykeeper %q's page", tc[0], code, errOut, out, tc[1])
		}
	}
	if _, errOut, code := opsCmd(t, "", "help", "frobnicate"); code != 2 || !strings.Contains(errOut, `unknown command "frobnicate"`) {
		t.Errorf("relaykeeper help frobnicate: exit %d, stderr %q; want 2 and the unknown command named", code, errOut)
	}
}

// TestCfg19VerifierMissing: an address verifier program that does not
// exist (a typing error) started, and every recipient then heard 450 for
// ever; a --filter program is checked at start-up, and now so is the
// verifier, at its line or switch.
func TestCfg19VerifierMissing(t *testing.T) {
	t.Parallel()
	gone := filepath.Join(t.TempDir(), "verifier")
	cfg19Refused(t, "[policy]\naddress_verifier = \""+gone+" --flag\"\n", 2, "policy.address_verifier", gone)
	if _, code, out := cfg19Start(t, "", "--address-verifier", gone); code <= 0 || !strings.Contains(out, "--address-verifier: ") {
		t.Errorf("--address-verifier %s: exit %d, stderr %q; want a refusal naming the switch", gone, code, out)
	}
}

// TestCfg19SubcommandSwitchErrors: the commands' wrong switches got Go's
// flag package's words, with one dash ("flag provided but not defined:
// -bogus", "invalid value \"x\" for flag -ban-delay: parse error") where
// the main command says "unknown switch --bogus"; they now say it as the
// main command does, with the switch as --help writes it. A duration may be
// seconds, as with the relay's switches ("--duration 3600" was refused).
func TestCfg19SubcommandSwitchErrors(t *testing.T) {
	t.Parallel()
	bans := filepath.Join(t.TempDir(), "bans")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"passwd", "--bogus"}, "relaykeeper passwd: unknown switch --bogus"},
		{[]string{"passwd", "--plain=maybe"}, `--plain=maybe: want true or false`},
		{[]string{"queue", "--json=yes", "--spool-dir", t.TempDir()}, `--json=yes: want true or false`},
		{[]string{"bans", "--bans", bans, "add", "192.0.2.1", "--duration", "x"}, `--duration "x": want a duration such as 90s or 4h`},
		{[]string{"postfix-enforcer", "--ban-delay", "soon"}, `--ban-delay "soon": want a duration such as 90s or 4h`},
	} {
		_, errOut, code := opsCmd(t, "pw\n", tc.args...)
		if code != 2 || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "parse error") {
			t.Errorf("relaykeeper %q: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
	// A bare number is seconds, as with the relay's own switches.
	if _, errOut, code := opsCmd(t, "", "bans", "--bans", bans, "add", "192.0.2.1", "--duration", "3600"); code != 0 {
		t.Errorf("relaykeeper bans add --duration 3600: exit %d, stderr %q; want 0", code, errOut)
	}
}

// TestCfg19SenderLoginMapsTableSpec: auth.sender_login_maps written as
// Postfix's smtpd_sender_login_maps is ("hash:/etc/postfix/sender_login"),
// as every other *_maps key takes it, was "open hash:/...: no such file or
// directory". The type of a postmap text file is taken; others are refused
// saying so.
func TestCfg19SenderLoginMapsTableSpec(t *testing.T) {
	t.Parallel()
	file := writeFile(t, t.TempDir(), "sender_login", "alice@example.com alice\n", 0o644)
	for _, typ := range []string{"hash:", "texthash:", "lmdb:"} {
		if _, code, out := cfg19Start(t, "[auth]\nsender_login_maps = \""+typ+file+"\"\n"); code != -1 {
			t.Errorf("sender_login_maps = %q: exit %d, stderr %q; want it to start", typ+file, code, out)
		}
	}
	cfg19Refused(t, "[auth]\nsender_login_maps = \"pcre:"+file+"\"\n", 2, "auth.sender_login_maps", "pcre: tables are not supported")
}
