package main

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/config"
)

// version is the release, set when building:
//
//	go build -ldflags "-X main.version=1.2.3" ./cmd/relaykeeper
var version = "dev"

// Command is a subcommand ("queue", "stats", ...) with its arguments,
// handed over unparsed because each subcommand has its own switches.
type Command struct {
	Name string
	Args []string
}

// exitUsage is the status for a wrong command line or configuration.
// Restarting cannot fix either, so a systemd unit can say
// RestartPreventExitStatus=2.
const exitUsage = 2

// exitError is what parseArgs returns when the process should end: the
// status to exit with and what to tell the operator. After --help and
// --version the text has been printed, err is nil and the status is 0.
type exitError struct {
	status int
	err    error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.status)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// reportArgsError tells the operator about an error from parseArgs, one
// "relaykeeper: " line per problem, and returns the status to exit with.
// main does:
//
//	cfg, cmd, err := parseArgs(os.Args[1:], os.Stdout)
//	if err != nil {
//		os.Exit(reportArgsError(os.Stderr, err))
//	}
func reportArgsError(stderr io.Writer, err error) int {
	status := 1
	var ee *exitError
	if errors.As(err, &ee) {
		status = ee.status
		if ee.err == nil {
			return status
		}
	}
	for _, line := range strings.Split(err.Error(), "\n") {
		fmt.Fprintf(stderr, "relaykeeper: %s\n", line)
	}
	return status
}

// parseArgs reads the command line: either a subcommand, returned as a
// Command with its arguments untouched, or E-MailRelay's switches, merged
// over the --config file (when given) over config.Default() (see
// config.ParseSwitches). The result has passed Validate.
//
// --help and --version print to stdout. Every error is an *exitError (see
// reportArgsError): status 2 for a wrong switch, a missing or bad value, a
// bad file or a configuration that fails Validate; status 0 after --help
// and --version. A first argument with a '/' or a '.' is no command but
// E-MailRelay's configuration file ("relaykeeper /etc/emailrelay.conf").
func parseArgs(args []string, stdout io.Writer) (config.Config, *Command, error) {
	if len(args) > 0 && args[0] != "" && !strings.HasPrefix(args[0], "-") && !strings.ContainsAny(args[0], "/.") {
		return config.Config{}, &Command{Name: args[0], Args: args[1:]}, nil
	}
	cl, err := config.ParseSwitches(args)
	if err != nil {
		return config.Config{}, nil, usageError(err)
	}
	if cl.Help {
		config.WriteUsage(stdout, config.Subcommands)
		return config.Config{}, nil, &exitError{status: 0}
	}
	if cl.Version {
		fmt.Fprintf(stdout, "relaykeeper %s\n", version)
		return config.Config{}, nil, &exitError{status: 0}
	}
	cfg, err := cl.Config()
	if err != nil {
		return config.Config{}, nil, &exitError{status: exitUsage, err: err}
	}
	return cfg, nil, nil
}

// usageError is a one-line command-line error with the way out.
func usageError(err error) error {
	return &exitError{status: exitUsage, err: fmt.Errorf("%w (see relaykeeper --help)", err)}
}
