package enforce

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

var blockTime = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func TestBlockSenderDomainAddsOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sender_access")
	// Odd spacing, tabs, a continuation line, CRLF and no final newline:
	// all kept byte for byte.
	old := "# sender access, by hand\r\n" +
		"spammer.example\tREJECT  go away\n" +
		"\n" +
		"user@good.example OK\n" +
		"multi.example REJECT a long\n" +
		"   continued text\n" +
		"last.example    DISCARD"
	if err := os.WriteFile(path, []byte(old), 0o640); err != nil {
		t.Fatal(err)
	}
	reason := "very low reputation of the sending domain (550-5.7.1 [203.0.113.9] Our system\nhas detected ... gsmtp)"
	added, err := BlockSenderDomain(path, "Bad.Example.", reason, blockTime)
	if err != nil || !added {
		t.Fatalf("BlockSenderDomain = %v, %v; want true, nil", added, err)
	}
	got, _ := os.ReadFile(path)
	want := old + "\n" +
		"# 2026-11-22T10:00:00Z relaykeeper: very low reputation of the sending domain (550-5.7.1 [203.0.113.9] Our system has detected ... gsmtp)\n" +
		"bad.example REJECT\n"
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("file mismatch (-want +got):\n%s", diff)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v; want the old file's 0640", fi.Mode().Perm())
	}

	// Listed already, in any case, under any action, or by a parent.
	for _, d := range []string{"bad.example", "BAD.EXAMPLE", "spammer.example", "sub.spammer.example", "last.example", "multi.example"} {
		added, err := BlockSenderDomain(path, d, "again", blockTime.Add(time.Hour))
		if err != nil || added {
			t.Errorf("BlockSenderDomain(%q) = %v, %v; want false, nil (listed)", d, added, err)
		}
	}
	// Keys that are not the domain: a user@ key, text in a continuation
	// line, a comment.
	for _, d := range []string{"good.example", "continued.example", "access.example"} {
		os.WriteFile(path, []byte("user@good.example OK\nx.example REJECT\n continued.example\n# access.example\n"), 0o644)
		if added, err := BlockSenderDomain(path, d, "r", blockTime); err != nil || !added {
			t.Errorf("BlockSenderDomain(%q) = %v, %v; want true, nil", d, added, err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1+postmapFiles() {
		t.Errorf("directory holds %d files; want no temporary or lock files", len(entries))
	}
}

// postmapFiles is how many files postmap adds beside a table.
func postmapFiles() int {
	if _, ok := postmapPath(); ok {
		return 1
	}
	return 0
}

func TestBlockSenderDomainCreatesFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sender_access")
	added, err := BlockSenderDomain(path, "new.example", "r", blockTime)
	if err != nil || !added {
		t.Fatalf("BlockSenderDomain = %v, %v; want true, nil", added, err)
	}
	got, _ := os.ReadFile(path)
	if want := "# 2026-11-22T10:00:00Z relaykeeper: r\nnew.example REJECT\n"; string(got) != want {
		t.Errorf("created file = %q; want %q", got, want)
	}
}

func TestBlockSenderDomainFollowsSymlink(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real_access")
	os.WriteFile(real, []byte("a.example REJECT\n"), 0o644)
	link := filepath.Join(dir, "sender_access")
	if err := os.Symlink("real_access", link); err != nil {
		t.Skip(err)
	}
	if _, err := BlockSenderDomain(link, "b.example", "r", blockTime); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(link); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the link was replaced by a file")
	}
	if got, _ := os.ReadFile(real); !strings.HasSuffix(string(got), "b.example REJECT\n") {
		t.Errorf("target = %q; want the entry added", got)
	}
}

func TestBlockSenderDomainRefusesBadDomains(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sender_access")
	for _, d := range []string{"", " ", ".", "localhost", "com.", "203.0.113.9", "[203.0.113.9]", "-a.example",
		"a-.example", "a..example", ".a.example", "a b.example", "exa_mple.com", "user@example.com",
		"ex*ample.com", "exämple.com", "example.com\nevil.com", strings.Repeat("a", 64) + ".com",
		strings.Repeat("abcdefghi.", 26) + "com"} {
		added, err := BlockSenderDomain(path, d, "r", blockTime)
		if err == nil || added {
			t.Errorf("BlockSenderDomain(%q) = %v, %v; want an error", d, added, err)
		}
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a refused domain created the file: %v", err)
	}
}

func TestBlockSenderDomainRunsPostmap(t *testing.T) {
	bin, ok := postmapPath()
	if !ok {
		harness.Missing(t, "postmap is not installed")
	}
	path := filepath.Join(t.TempDir(), "sender_access")
	if _, err := BlockSenderDomain(path, "blocked.example", "r", blockTime); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".db"); err != nil {
		if _, err2 := os.Stat(path + ".lmdb"); err2 != nil {
			t.Errorf("no indexed file after postmap: %v", err)
		}
	}
	conf := t.TempDir() // postmap needs a main.cf; the machine may have none
	os.WriteFile(filepath.Join(conf, "main.cf"), nil, 0o600)
	// Dated back, or postmap waits for it to be two seconds old.
	then := time.Now().Add(-time.Hour)
	os.Chtimes(filepath.Join(conf, "main.cf"), then, then)
	out, err := exec.Command(bin, "-c", conf, "-q", "Blocked.Example", path).Output()
	if err != nil || strings.TrimSpace(string(out)) != "REJECT" {
		t.Errorf("postmap -q blocked.example = %q, %v; want REJECT", out, err)
	}

	// A file changed behind postmap's back is indexed again by the next
	// call, even when it adds nothing.
	data, _ := os.ReadFile(path)
	os.WriteFile(path, append(data, "late.example REJECT\n"...), 0o644)
	future := time.Now().Add(time.Minute)
	os.Chtimes(path, future, future)
	if added, err := BlockSenderDomain(path, "late.example", "r", blockTime); added || err != nil {
		t.Errorf("BlockSenderDomain(listed) = %v, %v; want false, nil", added, err)
	}
	if out, _ := exec.Command(bin, "-c", conf, "-q", "late.example", path).Output(); strings.TrimSpace(string(out)) != "REJECT" {
		t.Errorf("stale index was not rebuilt: postmap -q late.example = %q", out)
	}
}

// TestTrim17PostmapPrivateMainCFIsOld: on a machine without Postfix's own
// main.cf, Postmap gives postmap an empty one of its own. Postfix waits
// until a main.cf is two seconds old before it trusts it, so a new one
// cost every blocked domain two seconds: it must be dated back.
func TestTrim17PostmapPrivateMainCFIsOld(t *testing.T) {
	if _, err := os.Stat(filepath.Join(postfixConfigDir, "main.cf")); err == nil {
		t.Skip("Postfix's own main.cf exists: Postmap makes none")
	}
	bin := t.TempDir()
	seen := filepath.Join(t.TempDir(), "mtime")
	script := "#!/bin/sh\nstat -c %Y \"$2/main.cf\" > " + seen + "\n"
	if err := os.WriteFile(filepath.Join(bin, "postmap"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	if err := Postmap(filepath.Join(t.TempDir(), "sender_access")); err != nil {
		t.Fatal(err)
	}
	out, err := os.ReadFile(seen)
	if err != nil {
		t.Fatalf("the fake postmap did not run: %v", err)
	}
	mtime, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("mtime %q: %v", out, err)
	}
	if age := time.Since(time.Unix(mtime, 0)); age < 2*time.Second {
		t.Errorf("postmap's main.cf was %v old; want two seconds or more, or Postfix waits for it to age", age)
	}
}
