package config

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strings"
)

// switchFileArgs reads an E-MailRelay configuration file, the command
// line's last argument ("emailrelay /etc/emailrelay.conf"): one switch a
// line without its dashes, then its value, if it takes one, as the rest of
// the line ("spool-dir /var/spool/emailrelay", "as-server"); # starts a
// comment line. It returns the switches as command-line arguments; a line
// that is not a known switch, a value its switch refuses, or a switch at
// odds with an earlier line's is an error with the file and line.
func switchFileArgs(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	byName := map[string]Switch{}
	for _, s := range Switches() {
		byName[s.Long] = s
	}
	var args []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, value := line, ""
		if i := strings.IndexAny(line, " \t"); i >= 0 {
			name, value = line[:i], strings.TrimSpace(line[i+1:])
		}
		name = strings.TrimPrefix(name, "--")
		s, ok := byName[name]
		arg := "--" + name
		switch {
		case !ok:
			return nil, fmt.Errorf("%s:%d: unknown switch --%s", path, n, name)
		case s.Arg == "" && value != "" && s.OptArg != "":
			arg += "=" + value
		case s.Arg == "" && value != "":
			return nil, fmt.Errorf("%s:%d: --%s takes no value, got %q", path, n, name, value)
		case s.Arg == "":
		case value == "":
			return nil, fmt.Errorf("%s:%d: --%s needs a value", path, n, name)
		default:
			arg += "=" + value
		}
		// A value the switch refuses, or a switch at odds with an
		// earlier line's, is this line's mistake: say so here, not
		// later among the command line's switches.
		if _, err := ParseSwitches(append(slices.Clip(args), arg)); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, n, err)
		}
		args = append(args, arg)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return args, nil
}
