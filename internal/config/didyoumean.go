package config

import (
	"errors"
	"flag"
	"strings"
)

// DidYouMean is "; did you mean NAME?" for the name of names nearest to
// typed, a mistyped switch or command ("--forwrd-to", "queu"), compared as
// the configuration file's keys are (a letter or two off, dashes as
// underscores); "" when none is near. Each of names is written as it
// should be typed ("--forward-to", "queue").
func DidYouMean(typed string, names []string) string {
	bare := func(s string) string { return strings.TrimLeft(s, "-") }
	if len(bare(typed)) < 2 {
		return "" // one letter is a letter off every other switch
	}
	keys := make([]string, 0, len(names))
	for _, n := range names {
		if len(bare(n)) > 1 {
			keys = append(keys, bare(n))
		}
	}
	k := closest(keys, bare(typed))
	if k == "" {
		return ""
	}
	for _, n := range names {
		if bare(n) == k {
			return "; did you mean " + n + "?"
		}
	}
	return ""
}

// longSwitches are relaykeeper's own long switches, dashes included.
func longSwitches() []string {
	var names []string
	for _, s := range Switches() {
		names = append(names, "--"+s.Long)
	}
	return names
}

// CommandNames are the names of relaykeeper's subcommands.
func CommandNames() []string {
	names := make([]string, len(Subcommands))
	for i, c := range Subcommands {
		names[i] = c.Name
	}
	return names
}

// FlagErrorIn is FlagError for a subcommand's switches fs: an unknown
// switch's message also names the switch of fs it was probably meant to be.
func FlagErrorIn(fs *flag.FlagSet, err error) error {
	err = FlagError(err)
	typed, ok := strings.CutPrefix(errorText(err), "unknown switch ")
	if !ok {
		return err
	}
	var names []string
	fs.VisitAll(func(f *flag.Flag) { names = append(names, dashed(f.Name)) })
	if hint := DidYouMean(typed, names); hint != "" {
		return errors.New("unknown switch " + typed + hint)
	}
	return err
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
