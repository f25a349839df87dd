package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCfg19SwitchFileBOM: E-MailRelay's configuration file saved by a
// Windows editor starts with a byte-order mark (and has CRLF line ends,
// and perhaps no newline at its end). The mark was taken as part of the
// first switch's name: "unknown switch --\ufeffspool-dir", the culprit
// invisible in the message.
func TestCfg19SwitchFileBOM(t *testing.T) {
	f := filepath.Join(t.TempDir(), "emailrelay.conf")
	if err := os.WriteFile(f, []byte("\ufeffspool-dir /var/spool/x\r\nport 2525\r\nas-server"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := switchFileConfig(t, f)
	if cfg.Spool.Dir != "/var/spool/x" || cfg.SMTP.Port != 2525 || cfg.Mode != ModeServer {
		t.Errorf("spool %q, port %d, mode %v; want /var/spool/x, 2525, server", cfg.Spool.Dir, cfg.SMTP.Port, cfg.Mode)
	}
}

// TestCfg19UnknownKeySuggests: an unknown key said only "unknown key",
// though most are a letter off a real one, a key of another section, a
// top-level key written under a section heading (TOML puts every key after
// [smtp] in [smtp]), or an E-MailRelay switch name. The message now says
// which key was meant.
func TestCfg19UnknownKeySuggests(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"[smtp]\nprot = 26\n", "FILE:2: smtp.prot: unknown key; did you mean smtp.port?"},
		{"[smtp]\nPort = 25\n", "FILE:2: smtp.Port: unknown key; did you mean smtp.port?"},
		{"[smtp]\nremote-clients = true\n", "FILE:2: smtp.remote-clients: unknown key; did you mean smtp.remote_clients?"},
		{"[enforce]\nnever_blok = []\n", "FILE:2: enforce.never_blok: unknown key; did you mean enforce.never_block?"},
		{"[smpt]\nport = 25\n", "FILE:1: smpt: unknown key; did you mean [smtp]?"},
		{"[smtp]\nport = 2525\nmode = \"proxy\"\n", "FILE:3: smtp.mode: unknown key; mode is a top-level key: write it above the first [section] heading"},
		{"[forward]\nserver_secrets = \"x\"\n", "FILE:2: forward.server_secrets: unknown key; server_secrets is a key of [auth]"},
		{"[forward]\nport = 25\n", "FILE:2: forward.port: unknown key; port is a key of [smtp], [pop] and [admin]"},
		{"max_message_size = 5\n", "FILE:1: max_message_size: unknown key; max_message_size is a key of [smtp]"},
		{"spool-dir = \"/x\"\n", "FILE:1: spool-dir: unknown key; --spool-dir's setting is spool.dir"},
		{"[transports.x]\nnexthp = \"[a.example]\"\n", "FILE:2: transports.x.nexthp: unknown key; did you mean transports.x.nexthop?"},
		{"[smtp]\nfrobnicate = 1\n", "FILE:2: smtp.frobnicate: unknown key"},
	} {
		cfg19Load(t, tt.src, tt.want)
	}
}

// TestCfg19TwiceDefined: a section heading written twice got the TOML
// parser's "Key 'smtp' has already been defined.", which sent the
// operator looking for a key named smtp; the message now says what TOML
// allows once.
func TestCfg19TwiceDefined(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"[smtp]\nport = 25\n\n[smtp]\nsize = 1\n", "FILE:4: [smtp] is written twice: a section has one heading in TOML; put its keys under the first"},
		{"[smtp]\nport = 25\nport = 26\n", "FILE:3: smtp.port is given twice: a key is given once in TOML"},
		{"mode = \"server\"\nmode = \"proxy\"\n", "FILE:2: mode is given twice: a key is given once in TOML"},
	} {
		cfg19Load(t, tt.src, tt.want)
	}
}

// TestCfg19ForeignFileAsConfig: E-MailRelay's configuration file or
// Postfix's main.cf given to --config got only the TOML parser's
// "expected '.' or '=', but got '\n' instead"; the message now says what
// the file looks like and what to do with it.
func TestCfg19ForeignFileAsConfig(t *testing.T) {
	for _, tt := range []struct{ src, want string }{
		{"# emailrelay\nas-server\nspool-dir /var/spool/x\n", "FILE:2: expected '.' or '=', but got '\\n' instead; this looks like E-MailRelay's configuration file: give it as the last argument (relaykeeper FILE), not with --config"},
		{"spool-dir /var/spool/x\n", "FILE:1: expected '.' or '=', but got '/' instead; this looks like E-MailRelay's configuration file: give it as the last argument (relaykeeper FILE), not with --config"},
		{"myhostname = relay.example.com\n", "FILE:1: expected value but found \"relay\" instead; this looks like Postfix's main.cf: relaykeeper's file is TOML (strings in quotes, lists in [ ]), and docs/postfix-migration.md says what each main.cf parameter becomes"},
		{"[smtp]\nport = = 2\n", "FILE:2: expected value but found '=' instead"},
	} {
		cfg19Load(t, tt.src, tt.want)
	}
}

// cfg19Load fails the test unless loading src gives the error want, FILE
// standing for the file's path.
func cfg19Load(t *testing.T, src, want string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "relaykeeper.toml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path)
	if want = strings.ReplaceAll(want, "FILE", path); err == nil || err.Error() != want {
		t.Errorf("%q: %v; want %s", src, err, want)
	}
}
