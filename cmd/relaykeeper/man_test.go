package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/clidoc"
	"github.com/relaykeeper/relaykeeper/internal/config"
)

//go:generate go test -run TestManPages -update-man .

var updateMan = flag.Bool("update-man", false, "rewrite docs/man from the switch table, the config structs and the usage texts")

const manDir = "../../docs/man"

// manPages renders every man page: relaykeeper(8), relaykeeper.toml(5) and
// one per subcommand.
func manPages(t *testing.T) map[string][]byte {
	t.Helper()
	src, err := os.ReadFile("../../internal/config/config.go")
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string][]byte{}
	var b bytes.Buffer
	if err := clidoc.Relaykeeper(&b, program()); err != nil {
		t.Fatal(err)
	}
	pages["relaykeeper.8"] = bytes.Clone(b.Bytes())
	b.Reset()
	if err := clidoc.ConfigPage(&b, src, config.Default(), program()); err != nil {
		t.Fatal(err)
	}
	pages["relaykeeper.toml.5"] = bytes.Clone(b.Bytes())
	for _, s := range program().Subcommands {
		b.Reset()
		if err := clidoc.SubcommandPage(&b, s); err != nil {
			t.Fatal(err)
		}
		pages[clidoc.PageName(s.Name)+".8"] = bytes.Clone(b.Bytes())
	}
	return pages
}

// TestManPages fails when docs/man differs from what the code says; run
// "go generate ./cmd/relaykeeper" to rewrite it.
func TestManPages(t *testing.T) {
	pages := manPages(t)
	if *updateMan {
		if err := os.MkdirAll(manDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, data := range pages {
			if err := os.WriteFile(filepath.Join(manDir, name), data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	on, _ := filepath.Glob(filepath.Join(manDir, "*.[0-9]"))
	if len(on) != len(pages) {
		t.Errorf("%s holds %d pages; want %d (go generate ./cmd/relaykeeper)", manDir, len(on), len(pages))
	}
	for name, want := range pages {
		got, err := os.ReadFile(filepath.Join(manDir, name))
		if err != nil {
			t.Errorf("%v (go generate ./cmd/relaykeeper)", err)
			continue
		}
		if d := cmp.Diff(string(want), string(got)); d != "" {
			t.Errorf("%s is out of date (go generate ./cmd/relaykeeper); -generated +committed:\n%s", name, d)
		}
	}
}

// TestManPagesRender renders every committed page with man(1) and fails
// on any warning groff gives.
func TestManPagesRender(t *testing.T) {
	if _, err := exec.LookPath("man"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("man is not installed (scripts/test-deps.sh installs man-db)")
		}
		t.Skip("man is not installed")
	}
	files, _ := filepath.Glob(filepath.Join(manDir, "*.[0-9]"))
	if len(files) == 0 {
		t.Fatalf("no pages in %s", manDir)
	}
	for _, f := range files {
		cmd := exec.Command("man", "--warnings", "-l", f)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "LC_ALL=C.UTF-8")
		var out, errs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errs
		if err := cmd.Run(); err != nil || errs.Len() > 0 {
			t.Errorf("man --warnings -l %s: %v\n%s", f, err, errs.String())
		}
		// Bold and underline are overstrikes ("N\bN") off a terminal.
		text := overstrike.ReplaceAllString(out.String(), "")
		if !strings.Contains(text, "\nNAME\n") {
			t.Errorf("man -l %s printed no NAME section:\n%s", f, text)
		}
	}
}

var overstrike = regexp.MustCompile(".\b")
