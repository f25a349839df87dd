// Package arch pins the import rules that keep relaykeeper cut by domain.
package arch

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const mod = "github.com/relaykeeper/relaykeeper/"

type pkg struct {
	ImportPath string
	Imports    []string
	Deps       []string
}

func listAll(t *testing.T) map[string]pkg {
	t.Helper()
	out, err := exec.Command("go", "list", "-json", "../../...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]pkg{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var p pkg
		if err := dec.Decode(&p); err != nil {
			t.Fatal(err)
		}
		pkgs[strings.TrimPrefix(p.ImportPath, mod)] = p
	}
	return pkgs
}

func TestImportRules(t *testing.T) {
	pkgs := listAll(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; want the whole module", len(pkgs))
	}
	frontEnds := []string{"internal/smtpd", "internal/pop3", "internal/admin"}
	for _, a := range frontEnds {
		for _, b := range frontEnds {
			if a != b && slices.Contains(pkgs[a].Deps, mod+b) {
				t.Errorf("%s depends on %s: front ends must not import each other", a, b)
			}
		}
	}
	// The leaves do no networking of their own.
	for _, leaf := range []string{"internal/spool", "internal/table", "internal/envelope"} {
		for _, d := range pkgs[leaf].Deps {
			if d == "net" || d == "net/http" || d == "net/smtp" || strings.HasPrefix(d, "github.com/emersion/go-smtp") {
				t.Errorf("%s depends on %s: it must not do networking", leaf, d)
			}
		}
	}
	// The back end (everything under internal/ but the front ends and the
	// scheduler itself) never reaches up into delivery or a front end:
	// those call it, through interfaces it declares or they declare.
	upper := append([]string{"internal/deliver"}, frontEnds...)
	for name, p := range pkgs {
		if !strings.HasPrefix(name, "internal/") || slices.Contains(upper, name) {
			continue
		}
		for _, u := range upper {
			if slices.Contains(p.Deps, mod+u) {
				t.Errorf("%s depends on %s: a back-end package must not import delivery or a front end", name, u)
			}
		}
	}
	// Only the command reads the configuration; every other package takes
	// its own options.
	for name, p := range pkgs {
		if strings.HasPrefix(name, "cmd/") || name == "internal/config" {
			continue
		}
		if slices.Contains(p.Imports, mod+"internal/config") {
			t.Errorf("%s imports internal/config: only cmd/relaykeeper may", name)
		}
	}
}
