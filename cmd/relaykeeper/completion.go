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

// program is the switch table, --help's text and the subcommands with
// their usage texts, for the man pages and completion.
func program() clidoc.Program {
	p := clidoc.Program{Description: config.Description, Subcommands: subcommandDocs()}
	sw := config.Switches()
	for _, g := range config.SwitchGroups() {
		cg := clidoc.Group{Title: g}
		for _, s := range sw {
			if s.Group == g {
				cg.Switches = append(cg.Switches, clidoc.Switch{Long: s.Long, Short: s.Short, Arg: s.Arg, Help: s.Help, Keys: s.Keys})
			}
		}
		p.Groups = append(p.Groups, cg)
	}
	for _, e := range config.Examples() {
		p.Examples = append(p.Examples, clidoc.Example{Command: e.Command, Says: e.Says})
	}
	return p
}

// subcommandDocs are the subcommands with their usage texts.
func subcommandDocs() []clidoc.Subcommand {
	usage := map[string]string{
		"queue": queueUsage, "stats": statsUsage, "passwd": passwdUsage, "bans": bansUsage,
		"submit": submitUsage, "enforce": enforceUsage, "postfix-enforcer": postfixEnforcerUsage,
		"completion": completionUsage,
	}
	var out []clidoc.Subcommand
	for _, c := range subcommands {
		out = append(out, clidoc.Subcommand{Name: c.Name, Help: c.Help, Usage: usage[c.Name]})
	}
	return out
}
