package auth

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

// SenderLogins says which SASL logins may use which envelope senders, as
// Postfix's smtpd_sender_login_maps for reject_sender_login_mismatch. The
// file is a Postfix table in text form (what postmap reads):
//
//	# KEY               LOGINS
//	alice@example.com   alice, alice2
//	@example.org        bob
//	sales@example.com   carol
//	                    dave        (a line starting with a blank continues the previous one)
//
// A key is user@domain or @domain, matched without regard to case; the
// logins are separated by commas or blanks and matched without regard to
// case, as Postfix does. A sender is looked up as itself, then without a
// "+extension" after the user, then as @domain; the first key found decides.
// Postfix's bare "user" keys (which Postfix matches only for its local
// domains) are refused, as relaykeeper has no local domains.
type SenderLogins struct {
	owners map[string][]string // lower-case key -> logins
}

// LoadSenderLogins reads a sender-login table: a file, or as Postfix's
// smtpd_sender_login_maps names it, "hash:FILE" (or another type postmap
// builds from the text file, which is what is read). The error lists every
// bad line as "FILE:LINE: message".
func LoadSenderLogins(spec string) (*SenderLogins, error) {
	path := spec
	if typ, rest, ok := strings.Cut(spec, ":"); ok && !strings.Contains(typ, "/") {
		switch typ {
		case "hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash":
			path = rest
		default:
			return nil, fmt.Errorf("auth: %q: %s: tables are not supported here; give the text file (Postfix's hash: source)", spec, typ)
		}
	}
	f, err := safefile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	defer f.Close()
	return parseSenderLogins(path, f)
}

func parseSenderLogins(name string, r io.Reader) (*SenderLogins, error) {
	t := &SenderLogins{owners: make(map[string][]string)}
	lines := make(map[string]int) // key -> line
	var errs []error
	// A logical line is a first line and its continuations, joined with
	// blanks when it ends (appending each continuation to a string took
	// time quadratic in them: 40,000 lines of logins, 5 s).
	var parts []string
	start := 0
	flush := func() {
		if len(parts) == 0 {
			return
		}
		if err := t.addLine(strings.Join(parts, " "), start, lines); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, start, err))
		}
		parts = parts[:0]
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if line[0] == ' ' || line[0] == '\t' {
			if len(parts) == 0 {
				errs = append(errs, fmt.Errorf("%s:%d: continuation line (it starts with a blank) without a line to continue", name, n))
				continue
			}
			parts = append(parts, trimmed)
			continue
		}
		flush()
		parts, start = append(parts, trimmed), n
	}
	flush()
	var pe *os.PathError // the file's own read error names it: no line ("read /etc: is a directory")
	if err := sc.Err(); errors.As(err, &pe) {
		errs = append(errs, err)
	} else if errors.Is(err, bufio.ErrTooLong) {
		errs = append(errs, fmt.Errorf("%s:%d: the line is longer than 64 KiB: no entry is that long", name, n+1))
	} else if err != nil {
		errs = append(errs, fmt.Errorf("%s:%d: %w", name, n+1, err))
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

func (t *SenderLogins) addLine(text string, n int, lines map[string]int) error {
	key, rest := text, ""
	if i := strings.IndexAny(text, " \t"); i >= 0 {
		key, rest = text[:i], text[i+1:]
	}
	key = resolved(key)
	at := strings.LastIndexByte(key, '@')
	switch {
	case at < 0:
		return fmt.Errorf("key %q is a bare user: write user@domain or @domain", key)
	case at == len(key)-1:
		return fmt.Errorf("key %q has no domain", key)
	case strings.Count(key, "@") > 1:
		return fmt.Errorf("key %q has more than one '@'", key)
	}
	logins := strings.FieldsFunc(rest, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' })
	if len(logins) == 0 {
		return fmt.Errorf("key %q has no login", key)
	}
	if old, ok := lines[key]; ok {
		return fmt.Errorf("duplicate key %q (first on line %d)", key, old)
	}
	lines[key] = n
	t.owners[key] = logins
	return nil
}

// Owners returns the logins that own sender, and whether the table has an
// entry for it at all. A trailing dot after the domain is ignored, as
// Postfix resolves the address before it looks: alice@example.com. is
// alice@example.com, and so owned by the same logins.
func (t *SenderLogins) Owners(sender string) ([]string, bool) {
	sender = resolved(sender)
	at := strings.LastIndexByte(sender, '@')
	if at < 0 {
		return nil, false
	}
	user, domain := sender[:at], sender[at:]
	keys := []string{sender}
	if i := strings.IndexByte(user, '+'); i > 0 {
		keys = append(keys, user[:i]+domain)
	}
	keys = append(keys, domain)
	for _, k := range keys {
		if logins, ok := t.owners[k]; ok {
			return slices.Clone(logins), true
		}
	}
	return nil, false
}

// resolved is an address or key as Postfix looks it up: in lower case,
// without trailing dots after the domain. Keys and senders go through
// the same, so a key written with the dot still owns its sender; every
// dot goes, so that a key is resolved as a sender written with one dot
// fewer is (FuzzSenderLogins: a key "@0.." kept "@0.", the sender
// "someone@0." became "someone@0", and the login did not own it).
func resolved(addr string) string {
	addr = strings.ToLower(addr)
	if at := strings.LastIndexByte(addr, '@'); at >= 0 {
		for at+2 < len(addr) && addr[len(addr)-1] == '.' {
			addr = addr[:len(addr)-1]
		}
	}
	return addr
}

// Owns reports whether login may send as sender: the sender's entry lists
// the login. A sender without an entry is owned by nobody, so this is false
// for it, as Postfix's reject_sender_login_mismatch has it; the null sender
// ("") is owned by everybody. An empty login (no AUTH) owns nothing.
func (t *SenderLogins) Owns(login, sender string) bool {
	if sender == "" {
		return true
	}
	if login == "" {
		return false
	}
	logins, _ := t.Owners(sender)
	for _, l := range logins {
		if strings.EqualFold(l, login) {
			return true
		}
	}
	return false
}
