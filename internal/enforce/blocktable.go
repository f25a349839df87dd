package enforce

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// BlockedDomain is one key of the sender access table.
type BlockedDomain struct {
	Domain string `json:"domain"`
	// Action is the table's value ("REJECT", "OK", ...).
	Action string `json:"action"`
	// Reason is the text of relaykeeper's comment line above the entry
	// ("2026-11-22T10:00:00Z relaykeeper: REASON"), "" for an entry
	// someone wrote by hand.
	Reason string `json:"reason,omitempty"`
}

// BlockTable is the sender access table the enforcer blocks domains in, as
// the admin interface lists and changes it. The zero value has no table.
type BlockTable struct{ Path string }

// BlockedDomains lists the table's entries in file order; a missing table
// has none.
func (t BlockTable) BlockedDomains() ([]BlockedDomain, error) {
	text, err := os.ReadFile(t.Path)
	if errors.Is(err, os.ErrNotExist) {
		return []BlockedDomain{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("enforce: sender_access: %w", err)
	}
	out := []BlockedDomain{}
	comment := ""
	for _, line := range strings.Split(string(text), "\n") {
		if strings.HasPrefix(line, "#") {
			if strings.Contains(line, " relaykeeper: ") {
				comment = strings.TrimSpace(strings.TrimPrefix(line, "#"))
			}
			continue
		}
		if line == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		f := strings.Fields(line)
		b := BlockedDomain{Domain: strings.TrimSuffix(f[0], ":"), Action: strings.Join(f[1:], " "), Reason: comment}
		comment = ""
		out = append(out, b)
	}
	return out, nil
}

// Block adds domain as BlockSenderDomainText does: the relay reads the
// table as text, so postmap runs only for an indexed copy beside it.
func (t BlockTable) Block(domain, reason string, now time.Time) (bool, error) {
	if t.Path == "" {
		return false, errors.New("enforce: no sender_access table is configured")
	}
	return BlockSenderDomainText(t.Path, domain, reason, now)
}

// Unblock removes domain's entry (the key itself, not a parent's) and
// relaykeeper's comment line above it, rewriting the table atomically and
// running postmap when an indexed form exists. It reports whether there
// was an entry.
func (t BlockTable) Unblock(domain string) (removed bool, err error) {
	d, ok := normalDomain(domain)
	if !ok {
		return false, fmt.Errorf("enforce: sender_access: %q is not a domain name", domain)
	}
	path := t.Path
	if p, err := filepath.EvalSymlinks(path); err == nil {
		path = p
	}
	unlock, err := flockPath(filepath.Dir(path))
	if err != nil {
		return false, fmt.Errorf("enforce: sender_access: %w", err)
	}
	defer unlock()
	old, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("enforce: sender_access: %w", err)
	}
	lines := strings.SplitAfter(string(old), "\n")
	var kept []string
	for _, line := range lines {
		if line != "" && line[0] != '#' && line[0] != ' ' && line[0] != '\t' {
			key := strings.ToLower(strings.TrimSuffix(strings.Fields(line + " ")[0], ":"))
			if key == d {
				removed = true
				if n := len(kept); n > 0 && strings.HasPrefix(kept[n-1], "#") && strings.Contains(kept[n-1], " relaykeeper: ") {
					kept = kept[:n-1]
				}
				continue
			}
		}
		kept = append(kept, line)
	}
	if !removed {
		return false, nil
	}
	var mode fs.FileMode = 0o644
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	if err := writeAccessFile(path, []byte(strings.Join(kept, "")), mode); err != nil {
		return false, fmt.Errorf("enforce: sender_access: %w", err)
	}
	if indexStale(path) {
		return true, Postmap(path)
	}
	return true, nil
}
