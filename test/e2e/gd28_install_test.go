package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestGd28InstalledDocLinks: make install puts README.md and docs/*.md
// side by side in $(DOCDIR), so the README's links to docs/admin.md and
// docs/screenshots/queue.png (and its paths `docs/auth.md`) named nothing
// there, nor did the docs' links to ../etc/. Every relative link and every
// .md path of the installed docs names an installed file.
func TestGd28InstalledDocLinks(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Fatalf("make is needed: %v", err)
	}
	dest := t.TempDir()
	out, errOut, code := runBinary(t, "make", "", "-s", "-C", "../..", "install", "INSTALL_DEPS=",
		"BIN="+harness.Binary(t), "DESTDIR="+dest, "PREFIX=/usr")
	if code != 0 {
		t.Fatalf("make install: exit %d\n%s%s", code, out, errOut)
	}
	docdir := filepath.Join(dest, "usr/share/doc/relaykeeper")
	docs, _ := filepath.Glob(filepath.Join(docdir, "*.md"))
	if len(docs) < 10 {
		t.Fatalf("%d docs installed in %s", len(docs), docdir)
	}
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	mdPath := regexp.MustCompile("`([a-z0-9/-]+\\.md)`")
	checked := 0
	for _, doc := range docs {
		text, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		var targets []string
		for _, m := range link.FindAllStringSubmatch(string(text), -1) {
			targets = append(targets, m[1])
		}
		if filepath.Base(doc) == "README.md" {
			for _, m := range mdPath.FindAllStringSubmatch(string(text), -1) {
				targets = append(targets, m[1])
			}
		}
		for _, target := range targets {
			target, _, _ = strings.Cut(target, "#")
			if target == "" || strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path := filepath.Join(filepath.Dir(doc), target)
			if filepath.IsAbs(target) {
				path = filepath.Join(dest, target)
			}
			checked++
			if _, err := os.Stat(path); err != nil {
				t.Errorf("installed %s names %s, which is not installed", filepath.Base(doc), target)
			}
		}
	}
	t.Logf("%d links and paths checked in %d installed docs", checked, len(docs))
}
