package main

import (
	"fmt"
	"io"

	"github.com/relaykeeper/relaykeeper/internal/clidoc"
	"github.com/relaykeeper/relaykeeper/internal/config"
)

// runCompletion is "relaykeeper completion bash".
func runCompletion(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "--help" || args[0] == "-h") {
		io.WriteString(stdout, config.CompletionUsage)
		return exitOK
	}
	if len(args) != 1 || args[0] != "bash" {
		fmt.Fprint(stderr, "relaykeeper completion: want one shell: bash\n"+config.CompletionUsage)
		return exitUsage
	}
	if err := clidoc.Bash(stdout, program()); err != nil {
		fmt.Fprintln(stderr, config.ErrorLine("relaykeeper completion", err))
		return exitFailure
	}
	return exitOK
}

// program is the switch table and the subcommands, for man pages and completion.
func program() clidoc.Program { return config.Program(config.Subcommands) }
