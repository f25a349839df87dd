package config

import (
	"os"
	"strings"
	"testing"
)

// TestOps28IdleDefaultsQuiet: the shipped example configuration, which
// lists every key with its default, started store-only (E-MailRelay's
// first example, --as-server, with --config) warned seventeen times that
// enforce.* keys "do nothing", at every start and --check, though none of
// them changes anything. A key with its default is quiet; one with
// another value still says so.
func TestOps28IdleDefaultsQuiet(t *testing.T) {
	example, err := os.ReadFile("../../etc/relaykeeper.toml")
	if err != nil {
		t.Fatal(err)
	}
	c, _ := gd27Load(t, string(example))
	if got := c.IdleSettings(); len(got) != 0 {
		t.Errorf("the shipped example, store only: IdleSettings() = %q; want none", got)
	}
	text := strings.Replace(string(example), `ban_time = "4h"`, `ban_time = "1h"`, 1)
	c, path := gd27Load(t, text)
	got := strings.Join(c.IdleSettings(), "\n")
	if !strings.Contains(got, path+":") || !strings.Contains(got, "enforce.ban_time: does nothing") || strings.Count(got, "\n") != 0 {
		t.Errorf("ban_time changed, store only: IdleSettings() = %q; want enforce.ban_time alone", got)
	}
}
