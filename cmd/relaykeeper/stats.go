package main

import (
	"flag"
	"fmt"
	"io"
	"strconv"

	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/stats"
)

// runStats is "relaykeeper stats": it summarises mail logs and returns the
// exit status.
func runStats(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relaykeeper stats", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	topText := fs.String("top", "10", "")
	asJSON := fs.Bool("json", false, "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	usage := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "relaykeeper stats: %s (see relaykeeper stats --help)\n", fmt.Sprintf(format, a...))
		return exitUsage
	}
	files, err := config.ParseInterleaved(fs, args)
	if err != nil {
		return usage("%v", err)
	}
	if *help {
		io.WriteString(stdout, config.StatsUsage)
		return exitOK
	}
	top, err := strconv.Atoi(*topText)
	if err != nil || top < 1 {
		return usage("--top %q: want a number of at least 1", *topText)
	}
	if len(files) == 0 {
		files = []string{"-"}
	}
	if err := stats.Summarise(stdout, files, stdin, top, *asJSON); err != nil {
		fmt.Fprintln(stderr, config.ErrorLine("relaykeeper stats", err))
		return exitFailure
	}
	return exitOK
}
