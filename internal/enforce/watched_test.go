package enforce

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRulesFileFollowsEdits: LoadRules's rules follow the file: an edit is
// in force at the next look (checkEvery after the last), a version with a
// bad line leaves the rules in force and is reported once with FILE:LINE,
// and a file that is no regular file is refused.
func TestRulesFileFollowsEdits(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "rules.conf")
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(path+".tmp", []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
	write("rule r1\n    action report\n")
	rs, err := LoadRules(path)
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Unix(1_800_000_000, 0)
	rs.file.now = func() time.Time { return clock }
	var said []string
	rs.file.report = func(p string, err error) { said = append(said, p+" "+errString(err)) }
	refusal := mustReply(t, "550 5.7.1 no")
	if v := rs.Classify(refusal); v.Action != Report {
		t.Fatalf("first version: %v; want report", v.Action)
	}
	write("rule r1\n    action ban\n")
	if v := rs.Classify(refusal); v.Action != Report {
		t.Errorf("before the next look: %v; want report still", v.Action)
	}
	clock = clock.Add(welcomeCheckEvery)
	if v := rs.Classify(refusal); v.Action != Ban {
		t.Errorf("after the look: %v; want ban", v.Action)
	}
	write("rule r1\n    action ban\n    code 99x\n")
	clock = clock.Add(welcomeCheckEvery)
	if v := rs.Classify(refusal); v.Action != Ban {
		t.Errorf("after a bad edit: %v; want the rules in force (ban)", v.Action)
	}
	if _, err := rs.Reload(); err == nil || !strings.Contains(err.Error(), path+":3: ") {
		t.Errorf("Reload after a bad edit = %v; want %s:3: ...", err, path)
	}
	if len(said) != 2 || !strings.HasSuffix(said[0], " ok") || !strings.Contains(said[1], path+":3: ") {
		t.Errorf("reported %q; want the good edit, then the bad one once", said)
	}
	if _, err := LoadRules(dir); err == nil || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("LoadRules(a directory) = %v; want it refused as a directory", err)
	}
	// A named pipe put in the file's place is refused at once, not waited
	// on for a writer (the reload, and every refusal, stuck behind it).
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(path, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := rs.Reload(); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "named pipe") {
			t.Errorf("Reload of a named pipe = %v; want it refused as a named pipe", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Reload of a named pipe still waiting after 5 s")
	}
	if v := rs.Classify(refusal); v.Action != Ban {
		t.Errorf("after a named pipe: %v; want the rules in force (ban)", v.Action)
	}
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func mustReply(t *testing.T, s string) Upstream {
	t.Helper()
	u, err := ParseReply(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
