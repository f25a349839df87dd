package main

import (
	"flag"
	"fmt"
	"io"
	"slices"

	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/enforce"
)

// runEnforce is "relaykeeper enforce": it tries the enforcement rules and
// the reply filter on replies, or prints the built-in ones. It returns the
// exit status.
func runEnforce(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "relaykeeper enforce: missing subcommand\n"+config.EnforceUsage)
		return exitUsage
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "-h", "-help", "--help", "help":
		io.WriteString(stdout, config.EnforceUsage)
		return exitOK
	case "rules", "reply-filter":
		if len(rest) == 1 && slices.Contains([]string{"-h", "-help", "--help"}, rest[0]) {
			io.WriteString(stdout, config.EnforceUsage)
			return exitOK
		}
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "relaykeeper enforce %s: unexpected argument %q\n", sub, rest[0])
			return exitUsage
		}
		if sub == "rules" {
			io.WriteString(stdout, enforce.DefaultRulesText())
		} else {
			io.WriteString(stdout, enforce.DefaultReplyFilterText())
		}
		return exitOK
	case "test":
		return runEnforceTest(rest, stdin, stdout, stderr)
	}
	fmt.Fprintf(stderr, "relaykeeper enforce: unknown subcommand %q (see relaykeeper enforce --help)\n", sub)
	return exitUsage
}

func runEnforceTest(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relaykeeper enforce test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rulesFile := fs.String("rules", "", "")
	filterFile := fs.String("reply-filter", "", "")
	host := fs.String("host", "", "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	replies, err := config.ParseInterleaved(fs, args)
	if err != nil {
		fmt.Fprintf(stderr, "relaykeeper enforce test: %v (see relaykeeper enforce --help)\n", err)
		return exitUsage
	}
	if *help {
		io.WriteString(stdout, config.EnforceUsage)
		return exitOK
	}
	if len(replies) != 1 {
		fmt.Fprintln(stderr, "relaykeeper enforce test: want one REPLY, or - to read replies from the standard input")
		return exitUsage
	}

	pol, rulesErr, filterErr := enforce.OpenPolicy(*rulesFile, *filterFile)
	switch {
	case rulesErr != nil:
		fmt.Fprintf(stderr, "relaykeeper enforce test: --rules:\n%v\n", rulesErr)
		return exitUsage
	case filterErr != nil:
		fmt.Fprintf(stderr, "relaykeeper enforce test: --reply-filter:\n%v\n", filterErr)
		return exitUsage
	}
	if replies[0] != "-" {
		if err := enforce.Explain(stdout, pol, replies[0], *host); err != nil {
			fmt.Fprintln(stderr, config.ErrorLine("relaykeeper enforce test", err))
			return exitUsage
		}
		return exitOK
	}
	status := exitOK
	err = enforce.ExplainEach(stdout, stdin, pol, *host, func(n int, err error) {
		fmt.Fprintf(stderr, "relaykeeper enforce test: line %d: %v\n", n, err)
		status = exitFailure
	})
	if err != nil {
		fmt.Fprintf(stderr, "relaykeeper enforce test: reading the standard input: %v\n", err)
		return exitFailure
	}
	return status
}
