package config

import (
	"os"
	"regexp"
	"testing"
)

// TestRev20bConfigPageNamesNoGoConstant: relaykeeper.toml(5), written
// from config.go's comments, told a user that an empty pop.auth means
// "DefaultPOPAuth", a Go constant's name, not a file.
func TestRev20bConfigPageNamesNoGoConstant(t *testing.T) {
	b, err := os.ReadFile("../../docs/man/relaykeeper.toml.5")
	if err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`\bDefault[A-Z][A-Za-z]*\b`).FindAll(b, -1); m != nil {
		t.Errorf("relaykeeper.toml(5) names Go constants: %q", m)
	}
}
