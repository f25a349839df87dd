package main

import (
	"fmt"
	"io"

	"github.com/relaykeeper/relaykeeper/internal/clidoc"
)

const completionUsage = `usage: relaykeeper completion bash

Prints a bash completion script for relaykeeper's switches and commands.
Load it with:

  source <(relaykeeper completion bash)

or install it as /usr/share/bash-completion/completions/relaykeeper.
`

// runCompletion is "relaykeeper completion bash".
func runCompletion(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "--help" || args[0] == "-h") {
		io.WriteString(stdout, completionUsage)
		return exitOK
	}
	if len(args) != 1 || args[0] != "bash" {
		fmt.Fprint(stderr, "relaykeeper completion: want one shell: bash\n"+completionUsage)
		return exitUsage
	}
	if err := clidoc.Bash(stdout, subcommandDocs()); err != nil {
		fmt.Fprintf(stderr, "relaykeeper completion: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// subcommandDocs are the subcommands with their usage texts, for the man
// pages and completion.
func subcommandDocs() []clidoc.Subcommand {
	usage := map[string]string{
		"queue": queueUsage, "stats": statsUsage, "passwd": passwdUsage, "bans": bansUsage,
		"submit": submitUsage, "enforce": enforceUsage, "postfix-enforcer": postfixEnforcerUsage,
	}
	var out []clidoc.Subcommand
	for _, c := range subcommands {
		out = append(out, clidoc.Subcommand{Name: c.Name, Help: c.Help, Usage: usage[c.Name]})
	}
	return out
}
