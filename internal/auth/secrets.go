package auth

import (
	"bufio"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
	"github.com/relaykeeper/relaykeeper/internal/xtext"
)

// Secrets is a loaded secrets file. It is read-only once loaded and safe for
// concurrent use, apart from Domain, which is set before serving.
type Secrets struct {
	// Domain goes into CRAM-MD5 challenges, "<random.time@Domain>"
	// (RFC 2195); "localhost" when empty.
	Domain string

	// dir is the secrets file's directory, for the oauth2 lines' files;
	// name is the file, for EveryoneTrusted.
	dir, name string

	users   map[string]*serverUser   // by user name, decoded
	trust   []trustRule              // server none lines, in file order
	clients map[string]*clientSecret // by selector; "" is the default line

	// bcryptCost is the highest cost of the bcrypt lines, 0 if there are
	// none; dummyHash has that cost (see Verify).
	bcryptCost int
	dummyHash  []byte
	dummyState md5State

	// Seams for tests.
	now         func() time.Time
	random      io.Reader
	compareHash func(hash, password []byte) error
}

// secretKind says what a server or client line holds.
type secretKind int

const (
	kindPlain  secretKind = iota + 1 // the password
	kindMD5                          // E-MailRelay's HMAC-MD5 state
	kindBcrypt                       // a bcrypt hash (server only)
	kindOAuth                        // an XOAUTH2 bearer token (client only)
	kindOAuth2                       // OAuth 2 credentials that refresh (client only)
	kindNone                         // "client plain = =": no AUTH
)

// serverUser is one server line with a user.
type serverUser struct {
	kind     secretKind
	state    md5State // kindPlain (derived from the password) and kindMD5
	hash     []byte   // kindBcrypt
	password string   // kindPlain, for APOPSecret
	line     int
}

// clientSecret is one client line.
type clientSecret struct {
	kind     secretKind
	user     string
	password string       // kindPlain: the password; kindOAuth: the token
	state    md5State     // kindMD5
	tokens   *TokenSource // kindOAuth2
	line     int
}

// dummyBcryptTail is the salt and hash of a bcrypt hash of a random string
// nobody knows. Verify compares passwords of unknown users against it so
// that they cost what a real user's do; the result is thrown away.
const dummyBcryptTail = "0Sb11u/hI/9JLimz0tIKVeqHIb3q4ur.rq3powXURHJMnet1iIXmy"

// bcryptPattern is the shape of the bcrypt hashes accepted in a file.
var bcryptPattern = regexp.MustCompile(`^\$2[aby]\$[0-9][0-9]\$[./A-Za-z0-9]{53}$`)

// SetLog makes the oauth2 lines' token sources report refresh failures
// (and refreshes) to log. Call it before the secrets are used.
func (s *Secrets) SetLog(log *slog.Logger) {
	for _, c := range s.clients {
		if c.tokens != nil {
			c.tokens.log = log
		}
	}
}

// LoadSecrets reads a secrets file (see the package documentation). The
// error for a bad file lists every bad line as "FILE:LINE: message".
//
// E-MailRelay's "pam:" is refused as not supported (LoadClientSecrets
// reads its inline form).
func LoadSecrets(path string) (*Secrets, error) {
	if path == "pam:" {
		return nil, errors.New("auth: PAM (pam:) is not supported: give a secrets file (docs/auth.md)")
	}
	f, err := safefile.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	defer f.Close()
	return parseSecrets(path, f)
}

// LoadClientSecrets is LoadSecrets for --client-auth, which also takes
// E-MailRelay's inline form "plain:BASE64-USER:BASE64-PASSWORD" (a client
// plain:b line) when no file has that name.
func LoadClientSecrets(arg string) (*Secrets, error) {
	rest, inline := strings.CutPrefix(arg, "plain:")
	if !inline {
		return LoadSecrets(arg)
	}
	if _, err := os.Stat(arg); err == nil {
		return LoadSecrets(arg)
	}
	user, pass, ok := strings.Cut(rest, ":")
	if !ok || user == "" || pass == "" || strings.ContainsAny(rest, " \t\r\n") {
		return nil, errors.New("auth: plain:USER:PASSWORD: want the user and password, each base64-encoded")
	}
	s, err := parseSecrets("plain:", strings.NewReader("client plain:b "+user+" "+pass+"\n"))
	if err != nil {
		// The line's own error, without its place (the secret).
		return nil, errors.New("auth: plain:USER:PASSWORD: want the user and password, each base64-encoded")
	}
	return s, nil
}

func newSecrets() *Secrets {
	return &Secrets{
		users:       make(map[string]*serverUser),
		clients:     make(map[string]*clientSecret),
		now:         time.Now,
		random:      rand.Reader,
		compareHash: bcrypt.CompareHashAndPassword,
	}
}

// parseSecrets reads a secrets file from r; name is used in errors.
func parseSecrets(name string, r io.Reader) (*Secrets, error) {
	s := newSecrets()
	s.dir, s.name = filepath.Dir(name), name
	var errs []error
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		if err := s.parseLine(withoutComment(strings.Fields(line)), n); err != nil {
			errs = append(errs, fmt.Errorf("%s:%d: %w", name, n, err))
		}
	}
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
	s.finish()
	return s, nil
}

// finish prepares the dummies Verify compares against.
func (s *Secrets) finish() {
	s.dummyState = maskKey([]byte("relaykeeper: no such user"))
	if s.bcryptCost > 0 {
		s.dummyHash = fmt.Appendf(nil, "$2a$%02d$%s", s.bcryptCost, dummyBcryptTail)
	}
}

// withoutComment drops a comment after a line's fields: E-MailRelay 2.6
// takes a word starting with '#' after the four fields (or after a client
// line's selector) as the start of one ("server plain alice pw # shop").
func withoutComment(f []string) []string {
	for i := 4; i < len(f); i++ {
		if strings.HasPrefix(f[i], "#") {
			return f[:i]
		}
	}
	return f
}

func (s *Secrets) parseLine(f []string, n int) error {
	side := strings.ToLower(f[0])
	if typ, ok := oldMechanismType(side, f); ok {
		// E-MailRelay 1.x: "MECHANISM SIDE USER SECRET", as in "login
		// server USER PASS", "APOP server USER PASS" (its user guide's POP
		// example) or "NONE server ADDRESS KEYWORD".
		if len(f) != 4 {
			return fmt.Errorf("want %[1]s server USER PASSWORD or %[1]s client USER PASSWORD", f[0])
		}
		side = strings.ToLower(f[1])
		f = []string{side, typ, f[2], f[3]}
	}
	switch side {
	case "server":
		if len(f) < 4 {
			return errors.New("too few fields: want server TYPE USER SECRET")
		}
		if len(f) > 4 {
			return errors.New("too many fields: want server TYPE USER SECRET (selectors are for client lines)")
		}
		return s.parseServer(strings.ToLower(f[1]), f[2], f[3], n)
	case "client":
		if len(f) < 4 {
			return errors.New("too few fields: want client TYPE USER SECRET [SELECTOR]")
		}
		if len(f) > 5 {
			return errors.New("too many fields: want client TYPE USER SECRET [SELECTOR]")
		}
		sel := ""
		if len(f) == 5 {
			sel = f[4]
		}
		return s.parseClient(strings.ToLower(f[1]), f[2], f[3], sel, n)
	default:
		return fmt.Errorf("unknown first word %q: want server or client", f[0])
	}
}

// oldMechanismType returns the type of an E-MailRelay 1.x line whose first
// word is a mechanism: LOGIN and APOP lines hold the password, CRAM-MD5 ones
// the password or its masked form (emailrelay-passwd), NONE ones a trusted
// address.
func oldMechanismType(first string, f []string) (string, bool) {
	switch first {
	case "login", "apop":
		return "plain", true
	case "none":
		return "none", true
	case "cram-md5":
		if len(f) == 4 {
			if _, err := parseMD5State(f[3]); err == nil {
				return "md5", true
			}
		}
		return "plain", true
	}
	return "", false
}

// canonicalType maps E-MailRelay's older type names to the current ones.
func canonicalType(t string) string {
	switch t {
	case "login":
		return "plain"
	case "cram-md5", "apop":
		return "md5"
	}
	return t
}

func (s *Secrets) parseServer(typ, id, secret string, n int) error {
	typ = canonicalType(typ)
	if typ == "none" {
		return s.parseTrust(id, secret, n)
	}
	u := &serverUser{line: n}
	var user string
	var err error
	switch typ {
	case "plain", "plain:b":
		var pass string
		if user, pass, err = decodePair(typ, id, secret); err != nil {
			return err
		}
		u.kind, u.state, u.password = kindPlain, maskKey([]byte(pass)), pass
	case "md5":
		if user, err = decodeUser(id); err != nil {
			return err
		}
		if u.state, err = parseMD5State(secret); err != nil {
			return err
		}
		u.kind = kindMD5
	case "bcrypt":
		if user, err = decodeUser(id); err != nil {
			return err
		}
		if !bcryptPattern.MatchString(secret) {
			return errors.New("invalid bcrypt hash: want $2a$, $2b$ or $2y$, a two-digit cost and 53 characters, as relaykeeper passwd prints")
		}
		cost, err := bcrypt.Cost([]byte(secret))
		if err != nil {
			return fmt.Errorf("invalid bcrypt hash: %w", err)
		}
		u.kind, u.hash = kindBcrypt, []byte(secret)
		s.bcryptCost = max(s.bcryptCost, cost)
	case "oauth", "oauth:b":
		return errors.New("oauth is for client lines")
	default:
		return fmt.Errorf("unsupported password type %q: want plain, plain:b, md5, bcrypt or none", typ)
	}
	if old, ok := s.users[user]; ok {
		return fmt.Errorf("duplicate server secret for user %q (first on line %d)", user, old.line)
	}
	s.users[user] = u
	return nil
}

func (s *Secrets) parseClient(typ, id, secret, sel string, n int) error {
	typ = canonicalType(typ)
	c := &clientSecret{line: n}
	var err error
	switch typ {
	case "plain", "plain:b":
		if id == "=" && secret == "=" {
			c.kind = kindNone
			break
		}
		if c.user, c.password, err = decodePair(typ, id, secret); err != nil {
			return err
		}
		c.kind = kindPlain
	case "md5":
		if c.user, err = decodeUser(id); err != nil {
			return err
		}
		if c.state, err = parseMD5State(secret); err != nil {
			return err
		}
		c.kind = kindMD5
	case "oauth", "oauth:b":
		if c.user, c.password, err = decodePair(strings.Replace(typ, "oauth", "plain", 1), id, secret); err != nil {
			return err
		}
		c.kind = kindOAuth
	case "oauth2":
		if c.user, err = decodeUser(id); err != nil {
			return err
		}
		creds, err := parseOAuthCredentials(secret, s.dir)
		if err != nil {
			return err
		}
		c.tokens = NewTokenSource(c.user, creds, nil)
		c.kind = kindOAuth2
	case "bcrypt":
		return errors.New("bcrypt is for server lines: a client needs the password itself")
	case "none":
		return errors.New("none is for server lines; for no AUTH write client plain = = SELECTOR")
	default:
		return fmt.Errorf("unsupported password type %q: want plain, plain:b, md5, oauth, oauth:b or oauth2", typ)
	}
	if old, ok := s.clients[sel]; ok {
		if sel == "" {
			return fmt.Errorf("duplicate default client secret (first on line %d)", old.line)
		}
		return fmt.Errorf("duplicate client secret for selector %q (first on line %d)", sel, old.line)
	}
	s.clients[sel] = c
	return nil
}

// decodeUser decodes an xtext user field.
func decodeUser(id string) (string, error) {
	user, err := xtext.Decode(id)
	if err != nil {
		return "", fmt.Errorf("invalid xtext in user: %w", err)
	}
	return user, nil
}

// decodePair decodes the user and secret fields of a plain (xtext) or
// plain:b (base64) line.
func decodePair(typ, id, secret string) (user, pass string, err error) {
	if typ == "plain:b" {
		if user, err = decodeBase64(id); err != nil {
			return "", "", fmt.Errorf("invalid base64 in user: %w", err)
		}
		if pass, err = decodeBase64(secret); err != nil {
			return "", "", fmt.Errorf("invalid base64 in password: %w", err)
		}
		if user == "" || pass == "" {
			return "", "", errors.New("empty user or password")
		}
		return user, pass, nil
	}
	if user, err = decodeUser(id); err != nil {
		return "", "", err
	}
	if pass, err = xtext.Decode(secret); err != nil {
		return "", "", fmt.Errorf("invalid xtext in password: %w", err)
	}
	return user, pass, nil
}

// decodeBase64 accepts padded and unpadded standard base64.
func decodeBase64(s string) (string, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		var err2 error
		if b, err2 = base64.RawStdEncoding.DecodeString(s); err2 != nil {
			return "", err
		}
	}
	return string(b), nil
}

// HasServer reports whether the file has any server line: a user, or a
// trusted address.
func (s *Secrets) HasServer() bool { return len(s.users) > 0 || len(s.trust) > 0 }

// HasAccounts reports whether the file has a server line with a user,
// which SMTP AUTH could log in, rather than only trusted addresses.
func (s *Secrets) HasAccounts() bool { return len(s.users) > 0 }

// APOPSecret returns the password of a user with a plain or plain:b server
// line. APOP (RFC 1939 section 7) compares MD5(timestamp + password) with
// what the client sends, so the server needs the password itself: users
// with md5 or bcrypt lines cannot use APOP (they still have USER/PASS and
// AUTH PLAIN).
func (s *Secrets) APOPSecret(user string) (string, bool) {
	u, ok := s.users[user]
	if !ok || u.kind != kindPlain {
		return "", false
	}
	return u.password, true
}

// HasClient reports whether the file has any client line.
func (s *Secrets) HasClient() bool { return len(s.clients) > 0 }

// Trusted reports whether ip is covered by a "server none" line, and that
// line's keyword. The longest matching prefix wins; among equal prefixes the
// first line. IPv4-mapped IPv6 addresses match IPv4 patterns.
func (s *Secrets) Trusted(ip netip.Addr) (keyword string, ok bool) {
	ip = ip.Unmap().WithZone("")
	best := -1
	for _, t := range s.trust {
		if t.prefix.Bits() > best && t.prefix.Contains(ip) {
			keyword, ok, best = t.keyword, true, t.prefix.Bits()
		}
	}
	return keyword, ok
}
