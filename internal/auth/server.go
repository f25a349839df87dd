package auth

import (
	"bytes"
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-sasl"
	"golang.org/x/crypto/bcrypt"
)

// ErrAuthFailed is the error of a SASL exchange whose credentials are wrong
// (the SMTP layer answers 535 5.7.8).
var ErrAuthFailed = errors.New("auth: authentication failed")

// loginFailed is ErrAuthFailed for a user name the client tried: the
// throttle forgets a user's own failures when that user logs in, and only
// those (LoginUser).
type loginFailed struct{ user, detail string }

func (e *loginFailed) Error() string { return ErrAuthFailed.Error() + e.detail }
func (e *loginFailed) Unwrap() error { return ErrAuthFailed }

// LoginUser is the user name a failed login tried.
func (e *loginFailed) LoginUser() string { return e.user }

// ErrUnsupportedMechanism is the error of Server for a mechanism that the
// file cannot serve (the SMTP layer answers 504 5.5.4).
var ErrUnsupportedMechanism = errors.New("auth: unsupported mechanism")

// HashCost is the bcrypt cost of HashPassword.
const HashCost = bcrypt.DefaultCost

// HashPassword returns the bcrypt hash of pw for a "server bcrypt" line.
// bcrypt reads at most 72 bytes, so a longer password is refused rather
// than cut.
func HashPassword(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("auth: empty password")
	}
	if len(pw) > 72 {
		return "", errors.New("auth: password longer than 72 bytes, which bcrypt cannot hash")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(pw), HashCost)
	if err != nil {
		return "", fmt.Errorf("auth: %w", err)
	}
	return string(h), nil
}

// Mechanisms returns the SASL mechanisms to advertise: none when the file
// has no server user, or before TLS unless allowInsecure; otherwise PLAIN
// and LOGIN, and CRAM-MD5 when every user has a plain or md5 line (a bcrypt
// hash cannot answer a CRAM-MD5 challenge).
func (s *Secrets) Mechanisms(tlsActive, allowInsecure bool) []string {
	if len(s.users) == 0 || (!tlsActive && !allowInsecure) {
		return nil
	}
	mechs := []string{sasl.Plain, sasl.Login}
	if s.canCRAM() {
		mechs = append(mechs, "CRAM-MD5")
	}
	return mechs
}

func (s *Secrets) canCRAM() bool {
	for _, u := range s.users {
		if u.kind == kindBcrypt {
			return false
		}
	}
	return true
}

// Server returns a SASL server for mech (PLAIN, LOGIN or CRAM-MD5) that
// checks credentials against the file and calls onSuccess, if not nil, with
// the user's name when they are right. Wrong credentials end the exchange
// with an error wrapping ErrAuthFailed. Server does not know about TLS: the
// caller accepts only the mechanisms Mechanisms offered.
func (s *Secrets) Server(mech string, onSuccess func(identity string)) (sasl.Server, error) {
	if len(s.users) == 0 {
		return nil, fmt.Errorf("%w %q: no server users", ErrUnsupportedMechanism, mech)
	}
	check := func(user string, ok bool) error {
		if !ok {
			return &loginFailed{user: user}
		}
		if onSuccess != nil {
			onSuccess(user)
		}
		return nil
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && identity != user {
				return &loginFailed{user, fmt.Sprintf(": authorization identity %q differs from user %q", identity, user)}
			}
			return check(user, s.Verify(user, pass))
		}), nil
	case sasl.Login:
		return &loginServer{verify: func(user, pass string) error {
			return check(user, s.Verify(user, pass))
		}}, nil
	case "CRAM-MD5":
		if !s.canCRAM() {
			return nil, fmt.Errorf("%w %q: some users have bcrypt hashes", ErrUnsupportedMechanism, mech)
		}
		return &cramServer{s: s, check: check}, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnsupportedMechanism, mech)
}

// Verify reports whether pass is user's password. See "Timing" in the
// package documentation: every call derives the HMAC-MD5 state of pass and
// compares it in constant time, and, when the file has bcrypt lines, runs
// one bcrypt comparison, against the user's own secret or a dummy, so that
// an unknown user costs what a known one does. Which result counts is
// decided only after both.
func (s *Secrets) Verify(user, pass string) bool {
	u := s.users[user]

	state := &s.dummyState
	if u != nil && u.kind != kindBcrypt {
		state = &u.state
	}
	got := maskKey([]byte(pass))
	stateOK := subtle.ConstantTimeCompare(got[:], state[:]) == 1

	hashOK := false
	if s.dummyHash != nil {
		h := s.dummyHash
		if u != nil && u.kind == kindBcrypt {
			h = u.hash
		}
		hashOK = s.compareHash(h, []byte(pass)) == nil
	}

	// HMAC pads keys with NULs, so "pw" and "pw\x00" share a state; SASL
	// passwords never hold a NUL (RFC 4616), and are never empty.
	valid := pass != "" && strings.IndexByte(pass, 0) < 0
	switch {
	case u == nil || !valid:
		return false
	case u.kind == kindBcrypt:
		return hashOK
	default:
		return stateOK
	}
}

// verifyCRAM checks a CRAM-MD5 response (RFC 2195): digest is the lower-case
// hex HMAC-MD5 of the challenge keyed with user's password. An unknown user
// is checked against a dummy state, in the same steps.
func (s *Secrets) verifyCRAM(user string, challenge, digest []byte) bool {
	u := s.users[user]
	state := &s.dummyState
	if u != nil && u.kind != kindBcrypt {
		state = &u.state
	}
	mac := state.hmac(challenge)
	want := make([]byte, hex.EncodedLen(md5.Size))
	hex.Encode(want, mac[:])
	ok := subtle.ConstantTimeCompare(want, bytes.ToLower(digest)) == 1
	return ok && u != nil && u.kind != kindBcrypt
}

// loginServer is the server side of LOGIN (draft-murchison-sasl-login): it
// asks "Username:" (unless the client sent the user as an initial
// response), then "Password:".
type loginServer struct {
	step   int
	user   string
	verify func(user, pass string) error
}

func (l *loginServer) Next(resp []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		if resp == nil {
			l.step = 1
			return []byte("Username:"), false, nil
		}
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	case 1:
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.verify(l.user, string(resp))
	}
	return nil, false, sasl.ErrUnexpectedClientResponse
}

// cramServer is the server side of CRAM-MD5 (RFC 2195).
type cramServer struct {
	s         *Secrets
	check     func(user string, ok bool) error
	challenge []byte
}

func (c *cramServer) Next(resp []byte) (challenge []byte, done bool, err error) {
	if c.challenge == nil {
		if len(resp) > 0 {
			return nil, false, errors.New("auth: CRAM-MD5 takes no initial response")
		}
		var r [8]byte
		if _, err := io.ReadFull(c.s.random, r[:]); err != nil {
			return nil, false, fmt.Errorf("auth: CRAM-MD5 challenge: %w", err)
		}
		domain := c.s.Domain
		if domain == "" {
			domain = "localhost"
		}
		c.challenge = fmt.Appendf(nil, "<%d.%d@%s>", binary.BigEndian.Uint64(r[:]), c.s.now().Unix(), domain)
		return c.challenge, false, nil
	}
	if c.check == nil {
		return nil, false, sasl.ErrUnexpectedClientResponse
	}
	check := c.check
	c.check = nil
	// "user digest"; the user may hold spaces, the digest does not.
	i := bytes.LastIndexByte(resp, ' ')
	if i < 0 {
		return nil, true, fmt.Errorf("%w: malformed CRAM-MD5 response", ErrAuthFailed)
	}
	user := string(resp[:i])
	return nil, true, check(user, c.s.verifyCRAM(user, c.challenge, resp[i+1:]))
}

// SMTPAuth is the secrets file as the SMTP server's Authenticator: the
// mechanisms offered before TLS depend on AllowInsecure. Each call uses
// the version of the file in force (ServerFile.Reload).
type SMTPAuth struct {
	S             *ServerFile
	AllowInsecure bool
}

// Mechanisms is Secrets.Mechanisms with AllowInsecure.
func (a SMTPAuth) Mechanisms(tlsActive bool) []string {
	return a.S.Secrets().Mechanisms(tlsActive, a.AllowInsecure)
}

// Server is Secrets.Server: the exchange checks the credentials against
// the version in force when it started.
func (a SMTPAuth) Server(mech string, onSuccess func(identity string)) (sasl.Server, error) {
	return a.S.Secrets().Server(mech, onSuccess)
}
