package config

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// switchFileArgs reads an E-MailRelay configuration file, the command
// line's last argument ("emailrelay /etc/emailrelay.conf"): one switch a
// line without its dashes, then its value, if it takes one, as the rest of
// the line ("spool-dir /var/spool/emailrelay", "as-server"); # starts a
// comment line; a Windows editor's byte-order mark and CRLF line ends are
// taken. As E-MailRelay reads it, "=" may stand between name and value
// ("port=25"), quotes around a value are dropped, and an on/off switch may
// say yes or no ("remote-clients no"). It returns the switches as
// command-line arguments, and where each was set ("FILE:LINE"); a line
// that is not a known switch, a value its switch refuses, or a switch at
// odds with an earlier line's is an error with the file and line.
func switchFileArgs(path string) (args, from []string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	byName := map[string]Switch{}
	for _, s := range Switches() {
		byName[s.Long] = s
	}
	sc := bufio.NewScanner(f)
	n := 1
	for ; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if n == 1 { // a Windows editor's byte-order mark
			line = strings.TrimPrefix(line, "\ufeff")
		}
		if strings.ContainsRune(line, 0) || strings.HasPrefix(line, "\xff\xfe") || strings.HasPrefix(line, "\xfe\xff") {
			// Windows' "Unicode": every other byte a NUL, which the
			// report would otherwise print to the terminal.
			return nil, nil, fmt.Errorf("%s:%d: the file holds NUL bytes: it is probably UTF-16 (Windows' \"Unicode\"); save it as UTF-8", path, n)
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if !utf8.ValidString(line) {
			return nil, nil, fmt.Errorf("%s:%d: %q is not UTF-8: save the file as UTF-8 (iconv -f latin1 -t utf-8)", path, n, line)
		}
		name, value := switchFileLine(line)
		s, ok := byName[name]
		arg := "--" + name
		switch {
		case !ok && (strings.HasPrefix(line, "[") || strings.HasSuffix(path, ".toml")):
			// relaykeeper's own file given where E-MailRelay's goes.
			return nil, nil, fmt.Errorf("%s:%d: %w; this looks like relaykeeper's TOML file: give it with --config %s", path, n, unknownSwitch("--"+name), path)
		case !ok:
			return nil, nil, fmt.Errorf("%s:%d: %w", path, n, unknownSwitch("--"+name))
		case s.Arg == "" && value != "" && s.OptArg != "":
			arg += "=" + value
		case s.Arg == "" && value != "":
			on, ok := yesNo(value)
			if !ok {
				return nil, nil, fmt.Errorf("%s:%d: --%s takes no value (or yes or no), got %q", path, n, name, value)
			}
			arg += "=" + strconv.FormatBool(on)
		case s.Arg == "":
		case value == "":
			return nil, nil, fmt.Errorf("%s:%d: --%s needs a value", path, n, name)
		default:
			arg += "=" + value
		}
		args, from = append(args, arg), append(from, fmt.Sprintf("%s:%d", path, n))
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			// No switch's value is this long; the file is not a switch file.
			return nil, nil, fmt.Errorf("%s:%d: a line longer than %d bytes", path, n, bufio.MaxScanTokenSize)
		}
		return nil, nil, fmt.Errorf("%s:%d: %w", path, n, err)
	}
	// A value the switch refuses, or a switch at odds with an earlier
	// line's, is its line's mistake: say so there, not later among the
	// command line's switches. The switches are parsed in order and the
	// first refused one stops the parse, so a prefix of args fails if and
	// only if it holds that one: a binary search finds it. (Parsing every
	// prefix took time quadratic in the lines: 20,000 lines, 420 KB, kept
	// the relay from starting for minutes.)
	if _, err := ParseSwitches(args); err != nil {
		k := sort.Search(len(args), func(i int) bool {
			_, err := ParseSwitches(args[: i+1 : i+1])
			return err != nil
		})
		if k < len(args) {
			_, err = ParseSwitches(args[: k+1 : k+1])
			return nil, nil, fmt.Errorf("%s: %w", from[k], err)
		}
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return args, from, nil
}

// switchFileLine splits a line of E-MailRelay's configuration file as
// E-MailRelay does: the name ends at the first space, tab or "=", the
// value is the rest without the spaces, tabs and "=" in front of it or the
// spaces and tabs after it, and quotes around the whole value go
// (`filter "/usr/bin/spamassassin --exit-code"`). A value's own "=" at its
// end stays ("client-auth plain:YWxpY2U=:cGFzcw==").
func switchFileLine(line string) (name, value string) {
	name = line
	if i := strings.IndexAny(line, " =\t"); i >= 0 {
		name, value = line[:i], strings.TrimRight(strings.TrimLeft(line[i:], " =\t"), " \t")
	}
	if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
		value = value[1 : len(value)-1]
	}
	return strings.TrimPrefix(name, "--"), value
}

// yesNo reads an on/off switch's value in E-MailRelay's configuration
// file: yes, true, on or 1, and no, false, off or 0, in any case.
func yesNo(s string) (on, ok bool) {
	switch strings.ToLower(s) {
	case "y", "yes", "t", "true", "on", "1":
		return true, true
	case "n", "no", "f", "false", "off", "0":
		return false, true
	}
	return false, false
}
