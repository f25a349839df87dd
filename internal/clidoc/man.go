package clidoc

import (
	"io"
	"strings"
)

// Program is what the man page and completion say about relaykeeper
// itself, taken from the switch table by the command.
type Program struct {
	// Description is the --help text's paragraphs, separated by blank
	// lines.
	Description string
	Groups      []Group
	Examples    []Example
	Subcommands []Subcommand
}

// Group is a group of switches, as --help lists them. A title with a
// second line is a heading and a sentence about the group.
type Group struct {
	Title    string
	Switches []Switch
}

// Switch is one switch of the table.
type Switch struct {
	Long, Short string
	Arg         string // the value's name; "" for an on/off switch
	Help        string
	Keys        []string // the configuration keys it sets
}

// Example is a command line and what it does.
type Example struct {
	Command, Says string
}

// Subcommand is a subcommand's entry for its man page: its name and its
// usage text, the one --help prints.
type Subcommand struct {
	Name  string
	Help  string // the one-line summary --help lists
	Usage string
	// Values are the words a switch takes, which completion offers
	// after it ("--state": new, ready, ...).
	Values map[string][]string
}

// PageName is the man page's name for a subcommand: relaykeeper-queue.
func PageName(sub string) string { return "relaykeeper-" + sub }

// Relaykeeper writes relaykeeper(8): the switch table, grouped as --help
// groups it, the subcommands, and what the process does with signals.
func Relaykeeper(w io.Writer, p Program) error {
	subs := p.Subcommands
	var r roff
	r.header("relaykeeper", "8", "System Manager's Manual")
	r.macro("SH", "NAME")
	r.text("relaykeeper - SMTP store-and-forward relay and proxy with E-MailRelay's switches")
	r.macro("SH", "SYNOPSIS")
	r.b.WriteString(bold("relaykeeper") + " [" + italic("SWITCHES") + "]\n.br\n")
	r.b.WriteString(bold("relaykeeper") + " " + italic("COMMAND") + " [" + italic("ARGS") + "]\n")
	r.macro("SH", "DESCRIPTION")
	for _, para := range strings.Split(p.Description, "\n\n") {
		r.para(para)
	}
	r.para("Switches override the settings of the file given with --config; " +
		"every setting and its switch is listed in relaykeeper.toml(5).")
	r.macro("SH", "OPTIONS")
	for _, g := range p.Groups {
		title, rest, _ := strings.Cut(g.Title, "\n")
		if rest != "" {
			// The compatibility group: a heading and a sentence, then
			// the switches with no description of their own.
			r.macro("SS", quoted("Ignored"))
			r.para(g.Title)
		} else {
			r.macro("SS", quoted(title))
		}
		for _, s := range g.Switches {
			r.item(switchTag(s.Long, s.Short, s.Arg), s.Help)
		}
	}
	r.macro("SH", "COMMANDS")
	r.para("Each command takes its own switches; see its page, or relaykeeper help COMMAND (the same as relaykeeper COMMAND --help).")
	for _, s := range subs {
		r.item(bold(s.Name), s.Help+" ("+PageName(s.Name)+"(8))")
	}
	r.macro("SH", "SIGNALS")
	r.item(bold("SIGHUP"), "re-read the tables, the mynetworks and relay_domains files, the secrets files, the enforcement rules and reply filter, and the server certificate "+
		"(a broken one is reported and the old one stays), rescan the spool, and reopen the log files "+
		"(--log-file and the mail log), so that logrotate needs no copytruncate.")
	r.item(bold("SIGTERM")+", "+bold("SIGINT"), "stop: close the listeners, let sessions "+
		"finish for the shutdown grace (a session still open at its end hears 421), release the spool's claims, exit 0. "+
		"A second signal cuts the grace short: sessions hear 421 and deliveries under way are cut at once (no attempt counted).")
	r.macro("SH", "EXIT STATUS")
	r.item("0", "stopped on request; with --as-client, everything was delivered.")
	r.item("1", "a failure while running; with --as-client, not everything was delivered.")
	r.item("2", "a wrong command line or configuration, or a listening address that cannot be bound. "+
		"Restarting cannot fix this: a systemd unit may say RestartPreventExitStatus=2.")
	r.macro("SH", "EXAMPLES")
	for _, e := range p.Examples {
		r.macro("TP")
		r.b.WriteString(`\f(CR` + esc(e.Command) + `\fR` + "\n")
		r.text(e.Says)
	}
	r.macro("SH", "FILES")
	r.item(italic("/etc/relaykeeper/relaykeeper.toml"), "the configuration file, when given with --config.")
	r.item(italic("/var/spool/relaykeeper"), "the spool (--spool-dir).")
	r.macro("SH", "SEE ALSO")
	var also []string
	also = append(also, bold("relaykeeper.toml")+"(5)")
	for _, s := range subs {
		also = append(also, bold(PageName(s.Name))+"(8)")
	}
	also = append(also, bold("emailrelay")+"(1)", bold("postfix")+"(1)")
	r.b.WriteString(strings.Join(also, ",\n") + "\n")
	return r.writeTo(w)
}

// SubcommandPage writes relaykeeper-NAME(8) from the subcommand's usage
// text: its "usage:" lines become the synopsis, flush-left paragraphs are
// filled, switch lists become tagged paragraphs, and other indented lines
// are kept as they are.
func SubcommandPage(w io.Writer, s Subcommand) error {
	if err := check(s.Name, s.Usage); err != nil {
		return err
	}
	var r roff
	r.header(PageName(s.Name), "8", "System Manager's Manual")
	r.macro("SH", "NAME")
	r.text(PageName(s.Name) + " - " + s.Help)
	blocks := strings.Split(strings.TrimRight(s.Usage, "\n"), "\n\n")
	r.macro("SH", "SYNOPSIS")
	for i, l := range strings.Split(blocks[0], "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(l, "usage:"))
		if i > 0 {
			r.macro("br")
		}
		r.text(l)
	}
	r.macro("SH", "DESCRIPTION")
	for _, b := range blocks[1:] {
		usageBlock(&r, strings.Split(b, "\n"))
	}
	r.macro("SH", "SEE ALSO")
	r.b.WriteString(bold("relaykeeper") + "(8), " + bold("relaykeeper.toml") + "(5)\n")
	return r.writeTo(w)
}

// usageBlock renders one blank-line-separated block of a usage text.
func usageBlock(r *roff, lines []string) {
	// A flush-left start is a paragraph, up to the first indented line.
	i := 0
	for i < len(lines) && !strings.HasPrefix(lines[i], " ") {
		i++
	}
	if i > 0 {
		r.para(strings.Join(lines[:i], " "))
	}
	rest := lines[i:]
	if len(rest) == 0 {
		return
	}
	if !optionLine.MatchString(rest[0]) || strings.HasPrefix(strings.TrimSpace(rest[0]), "$") {
		r.pre(rest)
		return
	}
	// A switch list: each line with a first column starts an entry;
	// a line indented to the description column continues it.
	col := strings.Index(rest[0], optionLine.FindStringSubmatch(rest[0])[2])
	var tag, desc string
	flush := func() {
		if tag != "" {
			r.item(tag, desc)
		}
	}
	for _, l := range rest {
		indent := len(l) - len(strings.TrimLeft(l, " "))
		if m := optionLine.FindStringSubmatch(l); m != nil && indent < col {
			flush()
			tag, desc = usageTag(m[1]), m[2]
			continue
		}
		if indent < col && strings.TrimSpace(l) != "" {
			// A lone first column with no description.
			flush()
			tag, desc = usageTag(strings.TrimSpace(l)), ""
			continue
		}
		desc += " " + strings.TrimSpace(l)
	}
	flush()
}
