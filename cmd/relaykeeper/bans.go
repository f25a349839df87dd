package main

import (
	"cmp"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/enforce"
)

// runBans is "relaykeeper bans": it lists, adds and removes bans in the
// ban file the daemon shares. It returns the exit status.
func runBans(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relaykeeper bans", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	bansFile := fs.String("bans", "", "")
	welcomeFile := fs.String("welcomelist", "", "")
	spoolDir := fs.String("spool-dir", "", "")
	configFile := fs.String("config", "", "")
	asJSON := fs.Bool("json", false, "")
	duration := config.Duration(fs, "duration", 0)
	reason := fs.String("reason", "", "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")

	words, err := config.ParseInterleaved(fs, args)
	if err != nil {
		fmt.Fprintf(stderr, "relaykeeper bans: %v (see relaykeeper bans --help)\n", err)
		return exitUsage
	}
	if *help {
		io.WriteString(stdout, config.BansUsage)
		return exitOK
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "relaykeeper bans: "+format+" (see relaykeeper bans --help)\n", a...)
		return exitUsage
	}
	if len(words) == 0 {
		return usage("missing command: list, add or remove")
	}
	cmd, operands := words[0], words[1:]
	allowed := map[string][]string{"list": {"json"}, "add": {"duration", "reason"}, "remove": nil}
	own, ok := allowed[cmd]
	if !ok {
		return usage("unknown command %q%s", cmd, config.DidYouMean(cmd, []string{"list", "add", "remove"}))
	}
	for _, name := range []string{"json", "duration", "reason"} {
		if set[name] && !slices.Contains(own, name) {
			return usage("--%s does not go with %s", name, cmd)
		}
	}
	wantOperands := map[bool]int{true: 0, false: 1}[cmd == "list"]
	if len(operands) != wantOperands {
		if len(operands) > wantOperands {
			return usage("unexpected argument %q", operands[wantOperands])
		}
		return usage("%s needs an IP address or network", cmd)
	}
	var target netip.Prefix // an address alone, or ADDR/LEN
	if wantOperands == 1 {
		if target, err = enforce.ParseBanTarget(operands[0]); err != nil {
			return usage("%v", err)
		}
	}
	if set["duration"] && *duration <= 0 {
		return usage("--duration must be positive")
	}

	path, welcomePath, err := config.BanFiles(*bansFile, *welcomeFile, *spoolDir, *configFile)
	if err != nil {
		fmt.Fprintln(stderr, config.ErrorLine("relaykeeper bans", err))
		return exitUsage
	}
	b, err := enforce.OpenBansByHand(path)
	if err != nil {
		fmt.Fprintln(stderr, config.ErrorLine("relaykeeper bans", err))
		return exitFailure
	}
	for _, p := range b.Problems() {
		fmt.Fprintln(stderr, config.ErrorLine("relaykeeper bans: warning", p))
	}

	wl, wlErr := enforce.WelcomelistIfAny(welcomePath)
	switch cmd {
	case "list":
		if err = wlErr; err == nil {
			err = enforce.WriteBanList(stdout, b.List(), *asJSON, wl)
		}
		if err != nil {
			fmt.Fprintln(stderr, config.ErrorLine("relaykeeper bans", err))
			return exitFailure
		}
	case "add":
		ban, err := b.AddNet(target, *duration, cmp.Or(*reason, "added by hand"))
		if err != nil {
			fmt.Fprintln(stderr, config.ErrorLine("relaykeeper bans", err))
			return exitFailure
		}
		fmt.Fprintf(stdout, "%s banned until %s\n", ban.Target(), ban.Until.UTC().Format(time.RFC3339))
		if warn := enforce.NotAppliedWarning(ban, wl); warn != "" || wlErr != nil {
			fmt.Fprintf(stderr, "relaykeeper bans: warning: %s\n", cmp.Or(warn, fmt.Sprint(wlErr)))
		}
	case "remove":
		lifted, err := b.Lift(target)
		if err != nil {
			fmt.Fprintln(stderr, config.ErrorLine("relaykeeper bans", err))
			return exitFailure
		}
		if len(lifted) == 0 {
			fmt.Fprintf(stderr, "relaykeeper bans: %s is not banned\n", operands[0])
			return exitFailure
		}
		io.WriteString(stdout, enforce.LiftedText(operands[0], lifted))
	}
	return exitOK
}
