package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestDocs26CheckTableWarnings: docs/tables.md says a duplicate key and a
// "key: value" line in a table are reported as warnings, as postmap
// reports them; --check and the start said nothing of them. Each kind of
// table the relay opens (an access table, a routing table, header checks)
// now has its warnings in the log, FILE:LINE first, and --check still
// passes.
func TestDocs26CheckTableWarnings(t *testing.T) {
	dir := t.TempDir()
	access := writeFile(t, dir, "access", "example.com REJECT\nexample.com OK\n", 0o644)
	transport := writeFile(t, dir, "transport", "example.net smtp:[127.0.0.1]:2599\nalias: smtp:[127.0.0.1]:2598\n", 0o644)
	checks := writeFile(t, dir, "header_checks", "if /^Subject:/ junk\n/spam/ REJECT no\nendif\n", 0o644)
	conf := cfg23Config(t, "[forward]\non_disconnect = true\n[routing]\ntransport_maps = [\"hash:"+transport+"\"]\n"+
		"[policy]\nsender_restrictions = [\"check_sender_access hash:"+access+"\"]\nheader_checks = \"regexp:"+checks+"\"\n")
	stdout, stderr, code := runBinary(t, harness.Binary(t), "", "--check", "--config", conf)
	if code != 0 {
		t.Fatalf("--check: exit %d, %q %q; want 0", code, stdout, stderr)
	}
	for _, want := range []string{
		access + `:2: duplicate entry \"example.com\" ignored; the entry at line 1 stays in force`,
		transport + `:2: record is in \"key: value\" format; is this an alias file?`,
		checks + `:1: ignoring extra text after if`,
	} {
		if !strings.Contains(stderr, `level=WARN msg="lookup table: `+want) {
			t.Errorf("--check's log lacks the warning %q:\n%s", want, stderr)
		}
	}
}

// TestDocs26BansMistypedSpool: "relaykeeper bans list --spool-dir TYPO"
// made an empty spool at TYPO and said no client was banned (exit 0), as
// a mistyped queue command never does. It now fails, naming the directory,
// and makes nothing.
func TestDocs26BansMistypedSpool(t *testing.T) {
	typo := filepath.Join(t.TempDir(), "spoool")
	bin := harness.Binary(t)
	for _, args := range [][]string{{"bans", "list", "--spool-dir", typo}, {"bans", "add", "192.0.2.1", "--spool-dir", typo}} {
		stdout, stderr, code := runBinary(t, bin, "", args...)
		if code != 1 || !strings.Contains(stderr, typo+" does not exist") {
			t.Errorf("relaykeeper %s: exit %d, %q %q; want exit 1 and %q", strings.Join(args, " "), code, stdout, stderr, typo+" does not exist")
		}
	}
	if _, err := os.Stat(typo); !os.IsNotExist(err) {
		t.Errorf("bans made %s (stat: %v); want nothing made", typo, err)
	}
}
