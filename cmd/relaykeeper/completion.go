package main

import (
	"fmt"
	"io"

	"github.com/relaykeeper/relaykeeper/internal/clidoc"
	"github.com/relaykeeper/relaykeeper/internal/config"
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
	if err := clidoc.Bash(stdout, program()); err != nil {
		fmt.Fprintf(stderr, "relaykeeper completion: %v\n", err)
		return exitFailure
	}
	return exitOK
}

// program is the switch table and the subcommands, for the man pages and
// completion.
func program() clidoc.Program { return config.Program(subcommands) }
