package policy

import (
	"bufio"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// matchSink takes what readMatchList finds: each pattern that is neither
// a file nor a table (a network, a domain), each table spec, and each
// problem, with where it is ("FILE:LINE", or "" in the setting itself).
type matchSink interface {
	pattern(where, s string, not bool)
	table(where, spec string, not bool)
	fail(where string, err error)
}

// readMatchList reads s, an item of a Postfix match list (mynetworks,
// relay_domains) or a line of one of its files, negated if not: a file
// or a table, whose spec may hold spaces, or patterns separated by commas
// or spaces, each negated by every "!" before it ("!!" undoes it) and
// each of which may be a file or a table too. A /file/name's lines (#
// comments) are read the same way; files are the files being read, which
// may not name themselves again; seen records each file read.
func readMatchList(sink matchSink, seen fileVersions, where, s string, not bool, files []string) {
	if s = strings.TrimSpace(s); s == "" {
		return
	}
	if bare := strings.TrimLeft(s, "!"); bare == "" || strings.HasPrefix(bare, "/") || isTableSpec(bare) {
		matchItem(sink, seen, where, s, not, files)
		return
	}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
		matchItem(sink, seen, where, f, not, files)
	}
}

// matchItem reads one pattern of a match list.
func matchItem(sink matchSink, seen fileVersions, where, s string, not bool, files []string) {
	for strings.HasPrefix(s, "!") {
		s, not = s[1:], !not
	}
	switch {
	case s == "":
		sink.fail(where, errors.New(`"!" with nothing to exclude`))
	case strings.HasPrefix(s, "/"):
		if slices.Contains(files, s) {
			sink.fail(where, fmt.Errorf("%s names itself", s))
			return
		}
		f, err := seen.open(s)
		if err != nil {
			sink.fail(where, err)
			return
		}
		defer f.Close()
		files = append(files, s)
		sc := bufio.NewScanner(f)
		n := 1
		for ; sc.Scan(); n++ {
			if line, _, _ := strings.Cut(sc.Text(), "#"); strings.TrimSpace(line) != "" {
				readMatchList(sink, seen, fmt.Sprintf("%s:%d", s, n), line, not, files)
			}
		}
		// Not read to its end (a directory, a line too long): taken as
		// it stood, it would trust or accept less with no word of why.
		if err := sc.Err(); errors.Is(err, bufio.ErrTooLong) {
			sink.fail(fmt.Sprintf("%s:%d", s, n), fmt.Errorf("the line is longer than %d bytes", bufio.MaxScanTokenSize))
		} else if err != nil {
			sink.fail(where, err) // a *PathError: it names the file
		}
	case isTableSpec(s):
		sink.table(where, s, not)
	default:
		sink.pattern(where, s, not)
	}
}
