package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/reply"
)

const enforceUsage = `usage: relaykeeper enforce test REPLY [--rules FILE] [--reply-filter FILE] [--host HOST]
       relaykeeper enforce test - [...]     (replies from the standard input, one a line)
       relaykeeper enforce rules            (print the built-in rules)
       relaykeeper enforce reply-filter     (print the built-in reply filter)

"enforce test" prints what relaykeeper would do about an upstream's reply to
a relayed message, the rule that decided, and what the client that
submitted the message would hear after reply rewriting:

  $ relaykeeper enforce test '550-5.7.1 [192.0.2.25 12] Our system has detected that this message is 550-5.7.1 likely unsolicited mail. ... - gsmtp'
  ban (rule gmail-unsolicited)
  client hears: 550-5.7.1 [192.0.2.25 12] Our system ... - gsmtp (unchanged)

REPLY may be as the server sent it (lines "550-5.7.1 ...", then "550 5.7.1
..."), as Postfix logs it (the lines joined on one line), or a piece of a
Postfix log line: "host H[A] said: REPLY (in reply to end of DATA command)".

  --rules FILE         rules to use instead of the built-in ones (docs/enforce-rules.md)
  --reply-filter FILE  reply filter (Postfix smtp_reply_filter format) instead of the built-in one
  --host HOST          the upstream's host name, for rules with a host condition
`

// runEnforce is "relaykeeper enforce": it tries the enforcement rules and
// the reply filter on replies, or prints the built-in ones. It returns the
// exit status.
func runEnforce(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, "relaykeeper enforce: missing subcommand\n"+enforceUsage)
		return exitUsage
	}
	sub, rest := args[0], args[1:]
	switch sub {
	case "-h", "-help", "--help", "help":
		io.WriteString(stdout, enforceUsage)
		return exitOK
	case "rules", "reply-filter":
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

// enforceTester is what "enforce test" tries replies on.
type enforceTester struct {
	rules  *enforce.Rules
	filter *enforce.ReplyFilter
	host   string
}

func runEnforceTest(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("relaykeeper enforce test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	rulesFile := fs.String("rules", "", "")
	filterFile := fs.String("reply-filter", "", "")
	host := fs.String("host", "", "")
	help := fs.Bool("help", false, "")
	fs.BoolVar(help, "h", false, "")
	// Switches may come before or after the reply.
	var replies []string
	for {
		if err := fs.Parse(args); err != nil {
			fmt.Fprintf(stderr, "relaykeeper enforce test: %v (see relaykeeper enforce --help)\n", err)
			return exitUsage
		}
		if fs.NArg() == 0 {
			break
		}
		replies = append(replies, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if *help {
		io.WriteString(stdout, enforceUsage)
		return exitOK
	}
	if len(replies) != 1 {
		fmt.Fprintln(stderr, "relaykeeper enforce test: want one REPLY, or - to read replies from the standard input")
		return exitUsage
	}

	t := enforceTester{rules: enforce.DefaultRules(), filter: enforce.DefaultReplyFilter(), host: *host}
	var err error
	if *rulesFile != "" {
		if t.rules, err = enforce.LoadRules(*rulesFile); err != nil {
			fmt.Fprintf(stderr, "relaykeeper enforce test: --rules:\n%v\n", err)
			return exitUsage
		}
	}
	if *filterFile != "" {
		if t.filter, err = enforce.LoadReplyFilter(*filterFile); err != nil {
			fmt.Fprintf(stderr, "relaykeeper enforce test: --reply-filter:\n%v\n", err)
			return exitUsage
		}
	}

	if replies[0] != "-" {
		if err := t.test(stdout, replies[0]); err != nil {
			fmt.Fprintf(stderr, "relaykeeper enforce test: %v\n", err)
			return exitUsage
		}
		return exitOK
	}
	status := exitOK
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	n, first := 0, true
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if !first {
			fmt.Fprintln(stdout)
		}
		first = false
		fmt.Fprintf(stdout, "reply: %s\n", line)
		if err := t.test(stdout, line); err != nil {
			fmt.Fprintf(stderr, "relaykeeper enforce test: line %d: %v\n", n, err)
			status = exitFailure
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(stderr, "relaykeeper enforce test: reading the standard input: %v\n", err)
		return exitFailure
	}
	return status
}

// test prints the verdict on one reply and what the client would hear:
// the engine's plan (enforce.Decide), for a client that is neither
// welcomelisted nor local.
func (t enforceTester) test(w io.Writer, s string) error {
	up, err := enforce.ParseReply(s)
	if err != nil {
		return err
	}
	if t.host != "" {
		up.Host = t.host
	}
	pl := enforce.Decide(enforce.Policy{Rules: t.rules, Filter: t.filter},
		enforce.Refusal{Client: netip.MustParseAddr("192.0.2.1"), Upstream: up})
	fmt.Fprintln(w, pl.Verdict)
	heard := up.Reply.String()
	hears := func(h reply.Reply) string {
		if s := h.String(); s != heard {
			return s
		}
		return heard + " (unchanged)"
	}
	switch pl.Action {
	case enforce.Encapsulate:
		fmt.Fprintf(w, "client hears, once the encapsulated copy is sent: %s\n", hears(pl.Heard))
		fmt.Fprintf(w, "client hears, if it cannot be sent: %s\n", hears(pl.Undone))
		return nil
	case enforce.Pace, enforce.Alert:
		fmt.Fprintf(w, "client hears: %s\n", hears(pl.Heard))
		fmt.Fprintln(w, "queued mail: kept (deferred), whatever the code says")
		return nil
	}
	fmt.Fprintf(w, "client hears: %s\n", hears(pl.Heard))
	return nil
}
