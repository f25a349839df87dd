package config

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestGd28ErrorLine: a subcommand's error says each context once, and
// keeps a file with its line, a path and a message id as they are.
func TestGd28ErrorLine(t *testing.T) {
	for _, tt := range []struct{ command, err, want string }{
		{"relaykeeper queue", "queue: spool: /s is the relay's own: open /s: permission denied",
			"relaykeeper queue: spool: /s is the relay's own: open /s: permission denied"},
		{"relaykeeper bans", "enforce: bans: open /x/bans: is a directory, not a file",
			"relaykeeper bans: enforce: open /x/bans: is a directory, not a file"},
		{"relaykeeper bans: warning", "bans: /x/bans:3: not an address",
			"relaykeeper bans: warning: /x/bans:3: not an address"},
		{"relaykeeper stats", "stats: stats: open a: no such file", "relaykeeper stats: open a: no such file"},
		{"relaykeeper enforce test", "rules:3: unknown keyword", "relaykeeper enforce test: rules:3: unknown keyword"},
		{"relaykeeper queue", "6B17282BD64DA04A: spool: x", "relaykeeper queue: 6B17282BD64DA04A: spool: x"},
		{"relaykeeper queue", "open /a: queue: x", "relaykeeper queue: open /a: queue: x"},
		{"relaykeeper submit", "spool: create: open /a: denied", "relaykeeper submit: spool: create: open /a: denied"},
		{"relaykeeper passwd", "no password", "relaykeeper passwd: no password"},
	} {
		if got := ErrorLine(tt.command, fmt.Errorf("%w", errors.New(tt.err))); got != tt.want {
			t.Errorf("ErrorLine(%q, %q) = %q; want %q", tt.command, tt.err, got, tt.want)
		}
	}
}

// TestGd28MilterRelativeSocket: "unix:relative/path" was accepted, and
// would be dialled relative to wherever relaykeeper was started (Postfix
// reads it in its queue directory). --check and the start refuse it,
// with the file and line.
func TestGd28MilterRelativeSocket(t *testing.T) {
	for _, addr := range []string{"unix:relative/sock", "local:./milter.sock", "unix:opendkim/opendkim.sock"} {
		c, path := gd27Load(t, "[milter]\nserver = [\"unix:/run/ok.sock\", \""+addr+"\"]\n")
		err := c.Validate()
		want := path + ":2: milter.server: \"" + addr + "\": milter: the socket's path is relative: give the absolute path"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want %q", err, want)
		}
	}
	c, _ := gd27Load(t, "[milter]\nserver = [\"unix:/run/ok.sock\", \"/run/also-ok.sock\", \"local:/run/x\"]\n")
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() of absolute paths = %v; want nil", err)
	}
}
