package main

import (
	"flag"
	"fmt"
	"io"

	"github.com/relaykeeper/relaykeeper/internal/auth"
	"github.com/relaykeeper/relaykeeper/internal/config"
)

// runPasswd is "relaykeeper passwd": it prints a secrets-file line for a
// password read from stdin. It returns the exit status.
func runPasswd(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relaykeeper passwd", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	plain := fs.Bool("plain", false, "")
	md5 := fs.Bool("md5", false, "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	if err := fs.Parse(args); err != nil {
		fmt.Fprintf(stderr, "relaykeeper passwd: %v (see relaykeeper passwd --help)\n", config.FlagErrorIn(fs, err))
		return exitUsage
	}
	if *help {
		io.WriteString(stdout, config.PasswdUsage)
		return exitOK
	}
	if *plain && *md5 {
		fmt.Fprintln(stderr, "relaykeeper passwd: --plain and --md5 exclude each other")
		return exitUsage
	}
	if fs.NArg() > 1 {
		fmt.Fprintf(stderr, "relaykeeper passwd: unexpected argument %q (see relaykeeper passwd --help)\n", fs.Arg(1))
		return exitUsage
	}
	user := fs.Arg(0)

	if isTerminal(stdin) {
		// No x/term here to turn echo off: say so rather than pretend.
		io.WriteString(stderr, "Password (it will be shown as you type): ")
	}
	pw, err := auth.ReadPassword(stdin)
	if err != nil {
		fmt.Fprintln(stderr, config.ErrorLine("relaykeeper passwd", err))
		return exitFailure
	}
	kind := "bcrypt"
	switch {
	case *plain:
		kind = "plain"
	case *md5:
		kind = "md5"
	}
	line, err := auth.ServerEntry(kind, user, pw)
	if err != nil {
		fmt.Fprintln(stderr, config.ErrorLine("relaykeeper passwd", err))
		return exitFailure
	}
	fmt.Fprintln(stdout, line)
	return exitOK
}
