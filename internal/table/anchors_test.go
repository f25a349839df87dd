package table

import "testing"

func TestGNUWordAnchors(t *testing.T) {
	for in, want := range map[string]string{
		`partner\.example$`:    `partner\.example$`,
		`\<partner\.example\>`: `\bpartner\.example\b`,
		`^mx[0-9]\<x`:          `^mx[0-9]\bx`,
		`[\<]x\<`:              `[\<]x\b`,
		`[]\<]\<`:              `[]\<]\b`,
		`a\\<`:                 `a\\<`,
		`\.\<`:                 `\.\b`,
	} {
		if got := GNUWordAnchors(in); got != want {
			t.Errorf("GNUWordAnchors(%q) = %q; want %q", in, got, want)
		}
	}
}
