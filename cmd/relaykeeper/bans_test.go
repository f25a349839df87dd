package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

func runBansTest(args ...string) (status int, stdout, stderr string) {
	var out, errb bytes.Buffer
	status = runBans(args, strings.NewReader(""), &out, &errb)
	return status, out.String(), errb.String()
}

func TestBansAddListRemove(t *testing.T) {
	dir := t.TempDir()
	// The relay keeps its bans in the spool's .enforce directory.
	path := filepath.Join(dir, ".enforce", "bans")
	os.MkdirAll(filepath.Dir(path), 0o755)

	status, out, errs := runBansTest("--bans", path, "add", "203.0.113.9", "--duration", "2h", "--reason", "spam run")
	if status != exitOK || errs != "" || !regexp.MustCompile(`^203\.0\.113\.9 banned until \S+Z\n$`).MatchString(out) {
		t.Fatalf("add = %d, %q, %q", status, out, errs)
	}
	// Switches anywhere; --spool-dir names the same file.
	if status, _, errs := runBansTest("add", "--spool-dir", dir, "2001:db8::7"); status != exitOK {
		t.Fatalf("add --spool-dir: %d, %s", status, errs)
	}

	status, out, errs = runBansTest("list", "--bans", path)
	if status != exitOK || errs != "" {
		t.Fatalf("list = %d, %q", status, errs)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "IP") ||
		!strings.Contains(lines[1], "203.0.113.9") || !strings.HasSuffix(lines[1], "spam run") ||
		!strings.Contains(lines[2], "2001:db8::7") || !strings.HasSuffix(lines[2], "added by hand") {
		t.Errorf("list =\n%s", out)
	}

	status, out, _ = runBansTest("--bans", path, "list", "--json")
	var list []struct {
		IP     string
		From   time.Time
		Until  time.Time
		Reason string
	}
	if status != exitOK || json.Unmarshal([]byte(out), &list) != nil || len(list) != 2 {
		t.Fatalf("list --json = %d, %q", status, out)
	}
	if d := list[0].Until.Sub(list[0].From); list[0].IP != "203.0.113.9" || d != 2*time.Hour {
		t.Errorf("list --json[0] = %+v; want 203.0.113.9 for 2h from now", list[0])
	}
	if d := list[1].Until.Sub(list[1].From); d != 4*time.Hour {
		t.Errorf("default duration = %v; want 4h", d)
	}
	if time.Since(list[0].From) < 0 {
		t.Errorf("a ban added by hand starts at %v, in the future", list[0].From)
	}

	if status, out, _ := runBansTest("--bans", path, "remove", "203.0.113.9"); status != exitOK || out != "203.0.113.9 no longer banned\n" {
		t.Errorf("remove = %d, %q", status, out)
	}
	if status, _, errs := runBansTest("--bans", path, "remove", "203.0.113.9"); status != exitFailure || !strings.Contains(errs, "not banned") {
		t.Errorf("remove again = %d, %q; want failure, not banned", status, errs)
	}
	if _, out, _ := runBansTest("--bans", path, "list", "--json"); strings.Contains(out, "203.0.113.9") {
		t.Errorf("removed ban still listed: %s", out)
	}
	if status, out, _ := runBansTest("--bans", filepath.Join(dir, "none"), "list", "--json"); status != exitOK || strings.TrimSpace(out) != "[]" {
		t.Errorf("list --json of no file = %d, %q; want []", status, out)
	}
}

func TestBansConfigFile(t *testing.T) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	os.Mkdir(spool, 0o755)
	cfg := filepath.Join(dir, "relaykeeper.toml")
	os.WriteFile(cfg, []byte("[spool]\ndir = \""+spool+"\"\n"), 0o644)
	if status, _, errs := runBansTest("--config", cfg, "add", "198.51.100.4"); status != exitOK {
		t.Fatalf("add --config: %d, %s", status, errs)
	}
	if data, err := os.ReadFile(filepath.Join(spool, ".enforce", "bans")); err != nil || !strings.Contains(string(data), "198.51.100.4 ") {
		t.Errorf("spool/bans = %q, %v", data, err)
	}
}

func TestBansUsageErrors(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bans")
	for _, args := range [][]string{
		{"--bans", path},
		{"--bans", path, "frobnicate"},
		{"--bans", path, "add"},
		{"--bans", path, "add", "not-an-ip"},
		{"--bans", path, "add", "203.0.113.9", "extra"},
		{"--bans", path, "add", "203.0.113.9", "--duration", "-1h"},
		{"--bans", path, "add", "203.0.113.9", "--duration", "forever"},
		{"--bans", path, "list", "--reason", "x"},
		{"--bans", path, "remove", "203.0.113.9", "--json"},
		{"--bans", path, "list", "--no-such-switch"},
	} {
		if status, _, errs := runBansTest(args...); status != exitUsage || !strings.HasPrefix(errs, "relaykeeper bans: ") {
			t.Errorf("bans %q = %d, %q; want %d and a message", args, status, errs, exitUsage)
		}
	}
	if status, out, _ := runBansTest("--help"); status != exitOK || !strings.HasPrefix(out, "usage: relaykeeper bans") {
		t.Errorf("--help = %d, %q", status, out)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a usage error wrote the ban file")
	}
}
