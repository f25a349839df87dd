package config

import (
	"fmt"
	"io"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/clidoc"
)

// wrap breaks text into lines of at most width columns, all but the first
// indented by indent spaces; the result ends with a newline.
func wrap(text string, indent, width int) string {
	var b strings.Builder
	col := indent
	for i, word := range strings.Fields(text) {
		if i > 0 {
			if col+1+len(word) > width {
				b.WriteString("\n" + strings.Repeat(" ", indent))
				col = indent
			} else {
				b.WriteString(" ")
				col++
			}
		}
		b.WriteString(word)
		col += len(word)
	}
	b.WriteString("\n")
	return b.String()
}

// Command is a subcommand as --help, the man page and completion list it.
type Command struct {
	Name, Help string
	// Usage is the subcommand's --help text, for its man page.
	Usage string
	// Values are the words a switch of its takes, for completion
	// ("--state": new, ready, ...).
	Values map[string][]string
}

// Program is the switch table, --help's text and the subcommands cmds
// with their usage texts, as the man pages and completion want them.
func Program(cmds []Command) clidoc.Program {
	p := clidoc.Program{Description: Description}
	for _, c := range cmds {
		p.Subcommands = append(p.Subcommands, clidoc.Subcommand{Name: c.Name, Help: c.Help, Usage: c.Usage, Values: c.Values})
	}
	sw := Switches()
	for _, g := range SwitchGroups() {
		cg := clidoc.Group{Title: g}
		for _, s := range sw {
			if s.Group == g {
				cg.Switches = append(cg.Switches, clidoc.Switch{Long: s.Long, Short: s.Short, Arg: s.Arg, Help: s.Help, Keys: s.Keys})
			}
		}
		p.Groups = append(p.Groups, cg)
	}
	for _, e := range Examples() {
		p.Examples = append(p.Examples, clidoc.Example{Command: e.Command, Says: e.Says})
	}
	return p
}

// WriteUsage prints --help: the switch table grouped like E-MailRelay's,
// then the subcommands.
func WriteUsage(w io.Writer, cmds []Command) {
	opts := Switches()
	var b strings.Builder
	b.WriteString("Usage: relaykeeper [SWITCHES]\n       relaykeeper COMMAND [ARGS]\n\n")
	b.WriteString(Description)
	const indent = 34
	for _, group := range SwitchGroups() {
		fmt.Fprintf(&b, "\n%s:\n", group)
		for _, o := range opts {
			if o.Group != group {
				continue
			}
			left := "      --" + o.Long
			if o.Short != "" {
				left = "  -" + o.Short + ", --" + o.Long
			}
			if o.Arg != "" {
				left += " " + o.Arg
			}
			b.WriteString(left)
			if o.Help == "" {
				b.WriteString("\n")
				continue
			}
			if len(left) >= indent-1 {
				b.WriteString("\n")
				left = ""
			}
			b.WriteString(strings.Repeat(" ", indent-len(left)))
			b.WriteString(wrap(o.Help, indent, 79))
		}
	}
	b.WriteString("\nCommands (run relaykeeper help COMMAND, or COMMAND --help, for theirs):\n")
	for _, c := range cmds {
		fmt.Fprintf(&b, "  %-18s %s\n", c.Name, c.Help)
	}
	b.WriteString("\nExamples:\n")
	for _, e := range Examples() {
		fmt.Fprintf(&b, "  %s\n      %s\n", e.Command, e.Says)
	}
	io.WriteString(w, b.String())
}

// Description is what relaykeeper is, for --help and the man page.
const Description = `relaykeeper is an SMTP store-and-forward relay and proxy that takes
E-MailRelay's switches. It never forks into the background: it runs in the
foreground, logs to standard error unless told otherwise, and expects
systemd or a container supervisor to start it, stop it and restart it.
Timeouts are seconds, or durations such as 90s or 5m. A switch may be
written --name VALUE or --name=VALUE. As with E-MailRelay, a file named
as the last argument (relaykeeper /etc/emailrelay.conf) holds switches,
one a line without the dashes ("spool-dir /var/spool/relay"); the
command line's own switches override them.
`

// Example is a command line and what it does.
type Example struct {
	Command, Says string
}

// Examples are the command lines --help and the man page show.
func Examples() []Example {
	return []Example{
		{"relaykeeper --as-server --port 10025 --spool-dir /tmp/spool", "store mail received on port 10025"},
		{"relaykeeper --as-client smarthost:smtp --spool-dir /tmp/spool", "forward what is stored to the smarthost, then exit"},
		{"relaykeeper --as-server --poll 3600 --forward-to smarthost:smtp", "store mail and forward it to the smarthost every hour"},
		{"relaykeeper --as-proxy smarthost:smtp", "pass each message to the smarthost as it arrives"},
	}
}
