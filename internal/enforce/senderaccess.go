package enforce

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

// postmapTimeout bounds one run of postmap(1).
const postmapTimeout = time.Minute

// BlockSenderDomain adds domain to the Postfix access(5) table at path as
//
//	# 2026-11-22T10:00:00Z relaykeeper: REASON
//	example.com REJECT
//
// unless the table lists it already, under any action: the domain itself,
// or a parent domain (as "example.com" or ".example.com"; ".sub.example.com"
// alone is no entry of sub.example.com, see accessListsDomain), since Postfix's
// parent_domain_matches_subdomains covers check_sender_access by default
// and an operator's "example.com OK" must not be overridden. It reports
// whether it added the entry.
//
// Every existing line is kept byte for byte (a last line without its
// newline gets one); the file is rewritten atomically (temporary file,
// fsync, rename, directory fsync) with the old file's mode and owner, and
// created if missing. After a change, or if the indexed file (PATH.db or
// PATH.lmdb) is older than PATH, BlockSenderDomain runs "postmap PATH" when
// postmap is installed, so that a Postfix reading hash:PATH sees the entry
// (see Postmap); a postmap failure is returned, and the table file stays
// written and correct.
//
// An empty or malformed domain, or an IP address, is refused. There is no
// list of domains too big to block: relay-enforcer has none, and the rules
// decide which refusals name the sending domain (see docs/enforce.md).
func BlockSenderDomain(path, domain, reason string, now time.Time) (added bool, err error) {
	return blockSenderDomain(path, domain, reason, now, true)
}

// BlockSenderDomainText is BlockSenderDomain for a table that relaykeeper
// reads as text itself (the relay's check_sender_access): it never needs
// postmap. Only when an indexed copy (PATH.db, .lmdb, .cdb) exists beside
// the table, for a Postfix that shares it, is postmap run to keep that copy
// current; its failure is returned and the text table stays correct.
func BlockSenderDomainText(path, domain, reason string, now time.Time) (added bool, err error) {
	return blockSenderDomain(path, domain, reason, now, false)
}

func blockSenderDomain(path, domain, reason string, now time.Time, index bool) (added bool, err error) {
	d, ok := normalDomain(domain)
	if !ok {
		return false, fmt.Errorf("enforce: sender_access: refusing to block %q: not a domain name", domain)
	}
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p // rewrite the file, not the link to it
	}
	// The directory's lock, not a lock file, so that /etc/postfix gets
	// no new file; it serializes BlockSenderDomain calls of all processes.
	unlock, err := flockPath(filepath.Dir(path))
	if err != nil {
		return false, fmt.Errorf("enforce: sender_access: %w", err)
	}
	defer unlock()

	old, err := os.ReadFile(path)
	var mode fs.FileMode = 0o644
	switch {
	case err == nil:
		if fi, err := os.Stat(path); err == nil {
			mode = fi.Mode().Perm()
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return false, fmt.Errorf("enforce: sender_access: %w", err)
	}

	if !accessListsDomain(old, d) {
		var buf bytes.Buffer
		buf.Write(old)
		if len(old) > 0 && old[len(old)-1] != '\n' {
			buf.WriteByte('\n')
		}
		fmt.Fprintf(&buf, "# %s relaykeeper: %s\n%s REJECT\n",
			now.UTC().Format(time.RFC3339), singleLine(reason), d)
		if err := writeAccessFile(path, buf.Bytes(), mode); err != nil {
			return false, fmt.Errorf("enforce: sender_access: %w", err)
		}
		added = true
	}
	switch {
	case indexStale(path), added && (index || indexExists(path)):
		if err := Postmap(path); err != nil {
			return added, err
		}
	}
	return added, nil
}

// writeAccessFile replaces the table keeping the old file's owner, so that
// a table owned by root:postfix stays so (see safefile.Options.KeepOwner).
func writeAccessFile(path string, data []byte, mode fs.FileMode) error {
	return safefile.Replace(path, safefile.Options{Perm: mode, KeepOwner: true}, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// accessListsDomain reports whether the access table text has a key for
// domain or one of its parents (bare or with a leading dot). Keys compare
// without regard to case, as Postfix folds them. ".domain" is no key for
// domain: access(5) has it match domain's subdomains only (and only when
// smtpd_access_maps is not in parent_domain_matches_subdomains), never
// domain itself.
func accessListsDomain(text []byte, domain string) bool {
	want := map[string]bool{domain: true}
	for d := domain; ; {
		_, parent, ok := strings.Cut(d, ".")
		if !ok {
			break
		}
		want[parent], want["."+parent] = true, true
		d = parent
	}
	for _, line := range strings.Split(string(text), "\n") {
		// A line starting with white space continues the previous one,
		// and "#" at the start is a comment (postmap(1)).
		if line == "" || line[0] == ' ' || line[0] == '\t' || line[0] == '#' {
			continue
		}
		key := strings.ToLower(strings.Fields(line + " ")[0])
		key = strings.TrimSuffix(key, ":") // "key: value" is tolerated by postmap
		if want[key] {
			return true
		}
	}
	return false
}

// normalDomain returns domain lower-case without a final dot, if it is a
// host name of at least two labels (letters, digits, hyphens; not an IP
// address).
func normalDomain(domain string) (string, bool) {
	d := strings.TrimSuffix(strings.ToLower(strings.TrimSpace(domain)), ".")
	if d == "" || len(d) > 253 || !strings.Contains(d, ".") {
		return "", false
	}
	labels := strings.Split(d, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return "", false
		}
		for _, c := range l {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				return "", false
			}
		}
	}
	// A top-level label is never all digits: that is an IPv4 address.
	tld := labels[len(labels)-1]
	if strings.Trim(tld, "0123456789") == "" {
		return "", false
	}
	return d, true
}

// indexStale reports whether an indexed form of path exists and is older
// than path: a postmap that failed or never ran after a change.
func indexStale(path string) bool {
	src, err := os.Stat(path)
	if err != nil {
		return false
	}
	for _, ext := range []string{".db", ".lmdb", ".cdb"} {
		if fi, err := os.Stat(path + ext); err == nil {
			return fi.ModTime().Before(src.ModTime())
		}
	}
	return false
}

// indexExists reports whether an indexed form of path exists.
func indexExists(path string) bool {
	for _, ext := range []string{".db", ".lmdb", ".cdb"} {
		if _, err := os.Stat(path + ext); err == nil {
			return true
		}
	}
	return false
}

// postmapPath finds postmap(1): on PATH, or in /usr/sbin, which a non-root
// PATH often lacks.
func postmapPath() (string, bool) {
	if p, err := exec.LookPath("postmap"); err == nil {
		return p, true
	}
	for _, p := range []string{"/usr/sbin/postmap", "/usr/local/sbin/postmap"} {
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0 {
			return p, true
		}
	}
	return "", false
}

// postfixConfigDir is Postfix's configuration directory, whose main.cf
// postmap reads (for default_database_type).
const postfixConfigDir = "/etc/postfix"

// Postmap runs "postmap -c DIR path" if postmap is installed, so that a
// Postfix reading hash:path sees the table as it now is. DIR is Postfix's
// own configuration directory when it has a main.cf; else a private
// directory with an empty main.cf (postmap refuses to run without one, and
// a machine that only runs the companion or the tests may have none), which
// is removed afterwards. Without postmap it does nothing.
func Postmap(path string) error {
	bin, ok := postmapPath()
	if !ok {
		return nil
	}
	conf := postfixConfigDir
	if _, err := os.Stat(filepath.Join(conf, "main.cf")); err != nil {
		dir, err := os.MkdirTemp("", "relaykeeper-postmap-")
		if err != nil {
			return fmt.Errorf("enforce: sender_access: %s is written, but its postmap index is not: %w", path, err)
		}
		defer os.RemoveAll(dir)
		// Postfix reads a main.cf less than two seconds old again, 0.3 s
		// apart, until it is that old ("pausing to let it finish being
		// written"): a new one made every postmap run, and so every
		// blocked domain, take two seconds. Dated back, it is read at once.
		mainCF := filepath.Join(dir, "main.cf")
		then := time.Now().Add(-time.Hour)
		if err := os.WriteFile(mainCF, nil, 0o600); err != nil {
			return fmt.Errorf("enforce: sender_access: %s is written, but its postmap index is not: %w", path, err)
		}
		if err := os.Chtimes(mainCF, then, then); err != nil {
			return fmt.Errorf("enforce: sender_access: %s is written, but its postmap index is not: %w", path, err)
		}
		conf = dir
	}
	ctx, cancel := context.WithTimeout(context.Background(), postmapTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "-c", conf, path).CombinedOutput()
	if err != nil {
		return fmt.Errorf("enforce: sender_access: %s is written, but \"postmap -c %s\" failed, so hash:%s is stale: %w: %s",
			path, conf, path, err, strings.TrimSpace(string(out)))
	}
	return nil
}
