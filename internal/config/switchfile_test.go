package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSwitchFile: E-MailRelay's configuration file as the command line's
// last argument ("emailrelay /etc/emailrelay.conf") gives its switches, one
// a line without dashes, the value the rest of the line; the command
// line's own switches override them. Before, the argument was refused.
func TestSwitchFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "emailrelay.conf")
	os.WriteFile(f, []byte("# E-MailRelay's\nas-server\nport 10025\n\nspool-dir /var/spool/emailrelay\nfilter /usr/bin/spamassassin --exit-code\nremote-clients\n"), 0o644)
	cl, err := ParseSwitches([]string{"--port", "2525", f})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cl.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != ModeServer || cfg.Spool.Dir != "/var/spool/emailrelay" || !cfg.SMTP.RemoteClients {
		t.Errorf("from %s: mode %v, spool %q, remote clients %v; want server, /var/spool/emailrelay, true", f, cfg.Mode, cfg.Spool.Dir, cfg.SMTP.RemoteClients)
	}
	if got := strings.Join(cfg.Filter.Server, "|"); got != "/usr/bin/spamassassin --exit-code" {
		t.Errorf("filter = %q; want the rest of the line", got)
	}
	if cfg.SMTP.Port != 2525 {
		t.Errorf("port = %d; want 2525, the command line's over the file's 10025", cfg.SMTP.Port)
	}

	for _, tt := range []struct{ content, want string }{
		{"as-server\nnosuch 1\n", f + ":2: unknown switch --nosuch"},
		{"as-server maybe\n", f + `:1: --as-server takes no value (or yes or no), got "maybe"`},
		{"port\n", f + ":1: --port needs a value"},
	} {
		os.WriteFile(f, []byte(tt.content), 0o644)
		if _, err := ParseSwitches([]string{f}); err == nil || err.Error() != tt.want {
			t.Errorf("ParseSwitches with %q: %v; want %q", tt.content, err, tt.want)
		}
	}
	if _, err := ParseSwitches([]string{f, "extra"}); err == nil {
		t.Error("two arguments accepted; want an error")
	}
}

// FuzzSwitchFile: any file gives switches or an error naming the file,
// never a panic, and every switch it gives is a known long one.
func FuzzSwitchFile(f *testing.F) {
	f.Add("# comment\nas-server\nspool-dir /var/spool/emailrelay\n")
	f.Add("--port 25\nforward-to smarthost:25\n")
	f.Add("as-server yes\n")
	f.Add("spool-dir\n")
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(t.TempDir(), "emailrelay.conf")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		args, _, err := switchFileArgs(path)
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			return
		}
		for _, a := range args {
			if !strings.HasPrefix(a, "--") {
				t.Errorf("argument %q is not a long switch", a)
			}
		}
	})
}

// TestRevPX3SwitchFileBadValueNamesLine: a value a switch refuses, in
// E-MailRelay's configuration file, is reported with the file and line,
// as an unknown switch is. It said only `--port "abc": ...`, which names
// a switch the user never typed on any command line.
func TestRevPX3SwitchFileBadValueNamesLine(t *testing.T) {
	f := filepath.Join(t.TempDir(), "emailrelay.conf")
	for _, tt := range []struct{ content, want string }{
		{"as-server\nport abc\n", f + `:2: --port "abc": want a port number from 1 to 65535`},
		{"# size\nas-server\n\nsize lots\n", f + `:4: --size "lots": want a number of bytes`},
		// A line at odds with an earlier one names its own line.
		{"as-server\nport 25\nas-proxy smarthost:25\n", f + `:3: --as-proxy "smarthost:25": conflicts with --as-server`},
	} {
		os.WriteFile(f, []byte(tt.content), 0o644)
		if _, err := ParseSwitches([]string{f}); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("ParseSwitches with %q: %v; want %q...", tt.content, err, tt.want)
		}
	}
	// The command line's own bad value names no file.
	os.WriteFile(f, []byte("as-server\n"), 0o644)
	if _, err := ParseSwitches([]string{"--port", "abc", f}); err == nil || strings.Contains(err.Error(), f) {
		t.Errorf("--port abc on the command line: %v; want an error naming no file", err)
	}
}

// TestRevPX3LogAddress: E-MailRelay's --log-address, which its own
// fail2ban set-up needs (every log line names the client), is accepted and
// ignored like its other logging switches: relaykeeper's mail log names
// the client on every line already. An /etc/emailrelay.conf with
// "log-address" made relaykeeper refuse to start: unknown switch.
func TestRevPX3LogAddress(t *testing.T) {
	f := filepath.Join(t.TempDir(), "emailrelay.conf")
	os.WriteFile(f, []byte("as-server\nlog\nlog-time\nlog-address\nspool-dir /var/spool/emailrelay\n"), 0o644)
	switchFileConfig(t, f)
	if _, err := ParseSwitches([]string{"--as-server", "--log-address"}); err != nil {
		t.Errorf("--log-address: %v; want it accepted", err)
	}
}

// TestRevPX3Debug: E-MailRelay's --debug (-g), its most detailed logging,
// is relaykeeper's --verbose. It was refused: unknown switch.
func TestRevPX3Debug(t *testing.T) {
	for _, args := range [][]string{{"--as-server", "--debug"}, {"--as-server", "-g"}} {
		cl, err := ParseSwitches(args)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		cfg, err := cl.Config()
		if err != nil || !cfg.Log.Verbose {
			t.Errorf("%v: verbose %v (%v); want the debug log on", args, cfg.Log.Verbose, err)
		}
	}
}

// TestCertificateSwitches: E-MailRelay's --server-tls-certificate and
// --client-tls-certificate, once for a PEM file with both, twice for the
// key file and then the certificate file; a third time is refused.
func TestCertificateSwitches(t *testing.T) {
	for _, tc := range []struct {
		args               []string
		srvCert, srvKey    string
		clientCert, cliKey string
	}{
		{[]string{"--server-tls-certificate", "both.pem", "--client-tls-certificate", "mine.pem"}, "both.pem", "", "mine.pem", ""},
		{[]string{"--client-tls-certificate", "key.pem", "--client-tls-certificate", "cert.pem"}, "", "", "cert.pem", "key.pem"},
		{[]string{"--server-tls-certificate", "k.pem", "--server-tls-certificate", "c.pem"}, "c.pem", "k.pem", "", ""},
	} {
		cl, err := ParseSwitches(append([]string{"--as-server"}, tc.args...))
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		cfg, err := cl.Config()
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		tl := cfg.TLS
		if tl.Certificate != tc.srvCert || tl.Key != tc.srvKey || tl.ClientCertificate != tc.clientCert || tl.ClientKey != tc.cliKey {
			t.Errorf("%v: server %q/%q client %q/%q", tc.args, tl.Certificate, tl.Key, tl.ClientCertificate, tl.ClientKey)
		}
	}
	if _, err := ParseSwitches([]string{"--client-tls-certificate", "a", "--client-tls-certificate", "b", "--client-tls-certificate", "c"}); err == nil {
		t.Error("a third --client-tls-certificate was accepted")
	}
}

// TestRevNew4SwitchFileAsEMailRelayReadsIt: E-MailRelay reads its
// configuration file's lines as "name value", "name=value" or
// "name = value", strips the quotes around a value that starts and ends
// with one (its GUI writes values with spaces quoted), and takes yes/no
// for an on/off switch. relaykeeper took `spool-dir "/var/spool/x"` as
// a relative directory named `"` and made the spool there, silently;
// "port=10025" was "unknown switch --port=10025"; "remote-clients yes"
// was refused.
func TestRevNew4SwitchFileAsEMailRelayReadsIt(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "emailrelay.conf")
	os.WriteFile(f, []byte("as-server\nport=10025\nspool-dir \"/var/spool/email relay\"\n"+
		"filter = \"/usr/bin/spamassassin --exit-code\"\n"+
		"client-auth\tplain:YWxpY2U=:cGFzcw==\nremote-clients yes\nforward-on-disconnect=no\nlog on\n"), 0o644)
	cfg := switchFileConfig(t, f)
	if cfg.SMTP.Port != 10025 || cfg.Spool.Dir != "/var/spool/email relay" {
		t.Errorf("port %d, spool %q; want 10025, /var/spool/email relay", cfg.SMTP.Port, cfg.Spool.Dir)
	}
	if got := strings.Join(cfg.Filter.Server, "|"); got != "/usr/bin/spamassassin --exit-code" {
		t.Errorf("filter = %q; want the quotes stripped", got)
	}
	if cfg.Auth.ClientSecrets != "plain:YWxpY2U=:cGFzcw==" {
		t.Errorf("client-auth = %q; want the value's own trailing = kept", cfg.Auth.ClientSecrets)
	}
	if !cfg.SMTP.RemoteClients || cfg.Forward.OnDisconnect || !cfg.Log.Enabled {
		t.Errorf("remote-clients %v, forward-on-disconnect %v, log %v; want yes, no, on", cfg.SMTP.RemoteClients, cfg.Forward.OnDisconnect, cfg.Log.Enabled)
	}
	os.WriteFile(f, []byte("as-server\nremote-clients maybe\n"), 0o644)
	if _, err := ParseSwitches([]string{f}); err == nil || !strings.HasPrefix(err.Error(), f+`:2: --remote-clients`) {
		t.Errorf("remote-clients maybe: %v; want an error naming %s:2", err, f)
	}
}

// TestRevNew4LetterSets: E-MailRelay takes one-letter switches written
// together ("-lv" is "-l -v", "-dr" is "--as-server --remote-clients"),
// as getopt does. relaykeeper refused them as "unknown switch --lv", a
// switch nobody typed. A letter that takes a value, or one that is no
// switch, is refused naming the letter and what was typed; a value that
// starts with a dash is left alone.
func TestRevNew4LetterSets(t *testing.T) {
	cl, err := ParseSwitches([]string{"-dr", "-lv", "-s", "/var/spool/x", "--domain", "-lv.example"})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cl.Config()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Mode != ModeServer || !cfg.SMTP.RemoteClients || !cfg.Log.Enabled || !cfg.Log.Verbose || cfg.Domain != "-lv.example" {
		t.Errorf("-dr -lv: mode %v, remote clients %v, log %v, verbose %v, domain %q; want server, on, on, on, -lv.example",
			cfg.Mode, cfg.SMTP.RemoteClients, cfg.Log.Enabled, cfg.Log.Verbose, cfg.Domain)
	}
	for args, want := range map[string]string{
		"-dp":   `-p in "-dp" takes a value: give it on its own`,
		"-lZ":   `unknown switch -Z in "-lZ"`,
		"-port": "", // Go's single-dash long form stays
	} {
		_, err := ParseSwitches([]string{args, "25"})
		if want == "" && err != nil || want != "" && (err == nil || err.Error() != want) {
			t.Errorf("ParseSwitches(%s 25) = %v; want %q", args, err, want)
		}
	}
}

// TestRevNew4EMailRelaySwitchesRefusedWithReason: an E-MailRelay switch
// relaykeeper does not take is refused naming it and saying what to do
// instead, by either of its names and from its configuration file; it
// said only "unknown switch --user" (or "-u"). E-MailRelay's -6 is
// --client-interface, which relaykeeper has: it was an unknown switch.
func TestRevNew4EMailRelaySwitchesRefusedWithReason(t *testing.T) {
	for _, args := range [][]string{{"--user", "daemon"}, {"-u", "daemon"}, {"--anonymous"}, {"-A"}, {"-x"}, {"--dont-serve"},
		{"--delivery-dir", "/x"},
		{"--forward-to-all"}, {"--localedir", "/x"}, {"--server-auth-config", "m:plain"},
		{"--client-auth-config", "m:plain"}, {"--in-spool-dir", "/x"}, {"--out-forward-to", "x:25"},
		{"--client-smtp-config", "+eightbitstrict,-pipelining"}, {"--server-smtp-config", "+chunking"}, {"--hidden"}} {
		_, err := ParseSwitches(append([]string{"--as-server"}, args...))
		if err == nil || !strings.Contains(err.Error(), strings.Split(args[0], "=")[0]+": E-MailRelay's switch is not supported: ") {
			t.Errorf("%v: %v; want it refused with a reason", args, err)
		}
	}
	f := filepath.Join(t.TempDir(), "emailrelay.conf")
	os.WriteFile(f, []byte("as-server\nuser daemon\n"), 0o644)
	if _, err := ParseSwitches([]string{f}); err == nil || !strings.HasPrefix(err.Error(), f+":2: --user: E-MailRelay's switch is not supported: ") {
		t.Errorf("user in %s: %v; want it refused at line 2 with a reason", f, err)
	}
	cl, err := ParseSwitches([]string{"--as-server", "-6", "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	if cfg, err := cl.Config(); err != nil || cfg.Forward.ClientInterface != "127.0.0.1" {
		t.Errorf("-6 127.0.0.1: client interface %q (%v); want 127.0.0.1", cfg.Forward.ClientInterface, err)
	}
	for _, typo := range []string{"--bogus", "--server-port", "--log-verbose"} {
		if _, err := ParseSwitches([]string{typo}); err == nil || err.Error() != "unknown switch "+typo {
			t.Errorf("%s: %v; want unknown switch %s", typo, err, typo)
		}
	}
}

// TestRevNew4EMailRelayLogFormat: E-MailRelay 2.6's --log-format, a list
// of fields, is refused saying so; it was only 'want "text" or "json"'.
// An --interface that is a Unix socket's path is refused as one; it was
// '"/run/smtp.s" is not an address or name'.
func TestRevNew4EMailRelayLogFormat(t *testing.T) {
	cl, err := ParseSwitches([]string{"--as-server", "--interface", "/run/smtp.s"})
	if err == nil {
		_, err = cl.Config()
	}
	if err == nil || !strings.Contains(err.Error(), "unix sockets (E-MailRelay's /path) are not supported") {
		t.Errorf("--interface /run/smtp.s: %v; want Unix sockets refused as such", err)
	}
	for _, v := range []string{"time,address", "msgid"} {
		cl, err := ParseSwitches([]string{"--as-server", "--log-format=" + v})
		if err == nil {
			_, err = cl.Config()
		}
		if err == nil || !strings.Contains(err.Error(), "E-MailRelay's list of fields is not supported") {
			t.Errorf("--log-format=%s: %v; want it refused as E-MailRelay's list of fields", v, err)
		}
	}
}

// TestPromptTimeoutSwitch: E-MailRelay's --prompt-timeout (-w) sets how
// long the upstream's greeting may take; it was refused.
func TestPromptTimeoutSwitch(t *testing.T) {
	for _, args := range [][]string{{"--prompt-timeout", "90"}, {"-w", "90"}, {"--prompt-timeout=90"}} {
		cl, err := ParseSwitches(append([]string{"--as-server"}, args...))
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if cfg, err := cl.Config(); err != nil || cfg.Forward.PromptTimeout != 90*time.Second {
			t.Errorf("%v: prompt timeout %v (%v); want 1m30s", args, cfg.Forward.PromptTimeout, err)
		}
	}
	if _, err := ParseSwitches([]string{"--as-server", "-w", "0"}); err == nil {
		t.Error("-w 0: no error; want a positive number of seconds")
	}
}

// TestForwardToSomeTaken: E-MailRelay's --forward-to-some asks for what
// relaykeeper always does (the accepted recipients are sent, the refused
// ones fail); a command line with it was refused.
func TestForwardToSomeTaken(t *testing.T) {
	if _, err := ParseSwitches([]string{"--as-server", "--forward-to-some"}); err != nil {
		t.Errorf("--forward-to-some: %v; want it taken", err)
	}
	if _, err := ParseSwitches([]string{"--as-server", "--forward-to-all"}); err == nil {
		t.Error("--forward-to-all: taken; want it refused, relaykeeper cannot fail the accepted recipients")
	}
}

// TestTLSConfigKeywords: E-MailRelay's --tls-config is taken when its
// keywords ask for what relaykeeper does, and refused naming the keyword
// otherwise; it was refused whatever it said.
func TestTLSConfigKeywords(t *testing.T) {
	for _, v := range []string{"tlsv1.2", "openssl,tlsv1.2", "mbedtls", "OpenSSL, TLSv1.2"} {
		if _, err := ParseSwitches([]string{"--as-server", "--tls-config=" + v}); err != nil {
			t.Errorf("--tls-config=%s: %v; want it taken", v, err)
		}
	}
	if _, err := ParseSwitches([]string{"--as-server", "-9", "tlsv1.2"}); err != nil {
		t.Errorf("-9 tlsv1.2: %v", err)
	}
	for v, want := range map[string]string{"tlsv1.0": "below TLS 1.2", "openssl,-tlsv1.2": `"-tlsv1.2"`, "tlsv1.3": "narrower", "bogus": "want openssl"} {
		if _, err := ParseSwitches([]string{"--as-server", "--tls-config", v}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("--tls-config %s: %v; want it refused saying %q", v, err, want)
		}
	}
}

// switchFileConfig reads E-MailRelay's configuration file f as the last
// argument of the command line and returns the configuration it makes.
func switchFileConfig(t *testing.T, f string) Config {
	t.Helper()
	cl, err := ParseSwitches([]string{f})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := cl.Config()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestCfg23SwitchFileTOML: relaykeeper's TOML file given as the last
// argument, where E-MailRelay's file of switches goes, is refused with a
// pointer to --config; it used to say only "unknown switch --[smtp]".
func TestCfg23SwitchFileTOML(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"relaykeeper.conf": "# relaykeeper\n[smtp]\nport = 25\n",
		"relaykeeper.toml": "mode = \"server\"\n",
	} {
		f := filepath.Join(dir, name)
		os.WriteFile(f, []byte(content), 0o644)
		_, err := ParseSwitches([]string{f})
		if want := "this looks like relaykeeper's TOML file: give it with --config " + f; err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v; want %q", name, err, want)
		}
	}
}
