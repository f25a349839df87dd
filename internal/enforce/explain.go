package enforce

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/reply"
	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

// OpenPolicy reads the rules and the reply filter from their files, or
// takes the built-in ones for an empty path. The error names the file that
// failed: rulesErr for the rules, else the filter's.
func OpenPolicy(rulesFile, filterFile string) (p Policy, rulesErr, filterErr error) {
	p.Rules, p.Filter = DefaultRules(), DefaultReplyFilter()
	if rulesFile != "" {
		if p.Rules, rulesErr = LoadRules(rulesFile); rulesErr != nil {
			return p, rulesErr, nil
		}
	}
	if filterFile != "" {
		p.Filter, filterErr = LoadReplyFilter(filterFile)
	}
	return p, nil, filterErr
}

// CheckFiles parses the enforcer's files that are named ("": none) as an
// enforcing relay reads them, making none (a missing welcomelist is made
// at start: no error). It is for --check in a mode that reads none of
// them (store-only, client, enforcement off), so that a broken file shows
// before the mode changes, not then. Each error names FILE:LINE.
func CheckFiles(rules, replyFilter, welcomelist string) (rulesErr, filterErr, welcomeErr error) {
	if rules != "" {
		_, rulesErr = LoadRules(rules)
	}
	if replyFilter != "" {
		_, filterErr = LoadReplyFilter(replyFilter)
	}
	if welcomelist != "" && exists(welcomelist) {
		_, welcomeErr = OpenWelcomelist(welcomelist)
	}
	return rulesErr, filterErr, welcomeErr
}

// Explain tells what the relay would do about an upstream's reply s (as
// ParseReply reads it) and what the client that submitted the message would
// hear: Decide's plan for a client that is neither welcomelisted nor local.
// The verdict comes first. A non-empty host stands for the upstream's name.
func Explain(w io.Writer, p Policy, s, host string) error {
	up, err := ParseReply(s)
	if err != nil {
		return err
	}
	if host != "" {
		up.Host = host
	}
	if up.Host == "" {
		// No upstream named: read the reply as the smarthost's.
		up.Host = "the smarthost"
		p.TrustedUpstreams = append(slices.Clone(p.TrustedUpstreams), up.Host)
	}
	// The envelope sender is of the domain the reply names, if any: a
	// domain block is then what the relay would do.
	from := "sender@" + cmp.Or(p.Rules.Classify(up).Domain, "example.com")
	pl := Decide(p, Refusal{Client: netip.MustParseAddr("192.0.2.1"), From: from, Upstream: up})
	fmt.Fprintln(w, pl.Verdict)
	if pl.Action != pl.Verdict.Action {
		// Not what the verdict says: before the content, an upstream
		// that is not trusted, a domain never blocked...
		fmt.Fprintf(w, "relay does: %s (%s)\n", pl.Action, pl.Why)
	}
	heard := up.Reply.String()
	hears := func(h reply.Reply) string {
		if s := h.String(); s != heard {
			return s
		}
		return heard + " (unchanged)"
	}
	switch pl.Action {
	case Encapsulate:
		fmt.Fprintf(w, "client hears, once the encapsulated copy is sent: %s\n", hears(pl.Heard))
		fmt.Fprintf(w, "client hears, if it cannot be sent: %s\n", hears(pl.Undone))
		return nil
	case Pace, Alert:
		fmt.Fprintf(w, "client hears: %s\n", hears(pl.Heard))
		fmt.Fprintln(w, "queued mail: kept (deferred), whatever the code says")
		return nil
	}
	fmt.Fprintf(w, "client hears: %s\n", hears(pl.Heard))
	return nil
}

// ExplainEach explains every reply read from in, one a line, skipping blank
// lines and # comments; each explanation follows a "reply:" line and a
// blank line separates them. A reply that does not parse is reported to
// bad with its line number and the rest go on; the returned error is one
// of reading in.
func ExplainEach(w io.Writer, in io.Reader, p Policy, host string, bad func(line int, err error)) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	for n, first := 1, true; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if !first {
			fmt.Fprintln(w)
		}
		first = false
		fmt.Fprintf(w, "reply: %s\n", line)
		if err := Explain(w, p, line, host); err != nil {
			bad(n, err)
		}
	}
	return sc.Err()
}

// StateDir is the enforcer's directory in a spool: a dot directory that
// spool tools pass over (E-MailRelay's copy: filter among them).
func StateDir(spoolDir string) string { return filepath.Join(spoolDir, ".enforce") }

// Files are the enforcer's state files.
type Files struct {
	SenderAccess, Welcomelist, Bans string
}

// Prepare fills in the files that are not set with their places in the
// spool's StateDir, creates that directory, and starts an absent sender
// access table with a header saying whose it is (empty, when the file
// system has no room for the header).
func (f Files) Prepare(spoolDir string) (Files, error) {
	dir := StateDir(spoolDir)
	if err := makeStateDir(dir); err != nil {
		return f, err
	}
	for p, name := range map[*string]string{&f.SenderAccess: "sender_access", &f.Welcomelist: "welcomelist", &f.Bans: "bans"} {
		if *p == "" {
			*p = filepath.Join(dir, name)
		}
	}
	if _, err := os.Stat(f.SenderAccess); os.IsNotExist(err) {
		hdr := "# Sender domains blocked by relaykeeper's enforcer (Postfix access(5) format).\n" +
			"# Each entry follows a comment saying when and why. Edit freely.\n"
		if err := writeNew(f.SenderAccess, hdr); err != nil {
			// A full file system (the spool's, filled by a store-only run)
			// must not keep the relay from starting and draining its
			// queue: an empty table, which takes an inode but no data
			// block, blocks nothing as well as one with the header.
			if writeNew(f.SenderAccess, "") != nil {
				return f, fmt.Errorf("enforce.sender_access: %w", err)
			}
		}
	}
	return f, nil
}

// makeStateDir makes the enforcer's directory in a spool (or the directory
// of a state file) if it is missing. Made by root (relaykeeper --check, a
// start by hand, relaykeeper bans add), it is given to the owner of the
// directory above, the spool's: the relay, running as its own user, must
// be able to make its files there.
func makeStateDir(dir string) error {
	_, statErr := os.Stat(dir)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("enforce: %w", err)
	}
	if o := safefile.DirOwner(filepath.Dir(dir)); o != nil && os.IsNotExist(statErr) {
		os.Chown(dir, o.UID, o.GID)
	}
	return nil
}

// writeNew writes a state file the enforcer starts with, given to its
// directory's owner when root makes it, so that the relay may rewrite it.
func writeNew(path, content string) error {
	return safefile.Replace(path, safefile.Options{Perm: 0o644, Owner: safefile.DirOwner(filepath.Dir(path))}, func(w io.Writer) error {
		_, err := io.WriteString(w, content)
		return err
	})
}
