package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// TestWalk21TypoSuggests: a mistyped switch or command is refused with exit
// status 2 and names what it was probably meant to be, as a mistyped key of
// the TOML file does: the relay's switches on the command line and in
// E-MailRelay's configuration file (with FILE:LINE), the subcommands, their
// switches and their commands.
func TestWalk21TypoSuggests(t *testing.T) {
	bin := harness.Binary(t)
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	conf := writeFile(t, dir, "emailrelay.conf", "spool-dir "+spool+"\nforwrd-to smarthost:smtp\n", 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--forwrd-to", "x:25", "--check"}, "unknown switch --forwrd-to; did you mean --forward-to?"},
		{[]string{"--colse-stderr", "--check"}, "did you mean --close-stderr?"},
		{[]string{conf, "--check"}, conf + ":2: unknown switch --forwrd-to; did you mean --forward-to?"},
		{[]string{"queu"}, `unknown command "queu"; did you mean queue?`},
		{[]string{"queue", "list", "--spool-dri", spool}, "unknown switch --spool-dri; did you mean --spool-dir?"},
		{[]string{"queue", "lst", "--spool-dir", spool}, `unknown command "lst"; did you mean list?`},
		{[]string{"bans", "lst", "--spool-dir", spool}, `unknown command "lst"; did you mean list?`},
		{[]string{"bans", "list", "--jsn", "--spool-dir", spool}, "did you mean --json?"},
		{[]string{"passwd", "--plan"}, "did you mean --plain?"},
		{[]string{"postfix-enforcer", "--stat", filepath.Join(dir, "state")}, "did you mean --state?"},
	} {
		_, stderr, code := runBinary(t, bin, "", c.args...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("relaykeeper %s: exit %d, %q; want exit 2 and %q", strings.Join(c.args, " "), code, stderr, c.want)
		}
	}
	// Nothing near: no guess, and no guess from one letter.
	for _, args := range [][]string{{"--frobnicate"}, {"-Z"}} {
		if _, stderr, code := runBinary(t, bin, "", args...); code != 2 || strings.Contains(stderr, "did you mean") {
			t.Errorf("relaykeeper %s: exit %d, %q; want exit 2 and no guess", args[0], code, stderr)
		}
	}
}
