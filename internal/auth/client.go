package auth

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-sasl"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// ClientLogin is one "client" line of a secrets file: how the relay logs
// in to a server. It is what remote.Options.Auth takes.
type ClientLogin struct{ c *clientSecret }

// ClientAuth returns the client line for selector ("" is the default line,
// the one without a fifth field). ok is false when the file has no line for
// selector. A line "client plain = = SELECTOR" means no AUTH: the login is
// then nil and ok true.
func (s *Secrets) ClientAuth(selector string) (*ClientLogin, bool) {
	c, ok := s.clients[selector]
	if !ok {
		return nil, false
	}
	if c.kind == kindNone {
		return nil, true
	}
	return &ClientLogin{c}, true
}

// ClientAccounts returns the file's client lines as a remote.Authenticator:
// the default line's login, or, when some lines have a selector, a
// remote.Accounts that logs in with the line of the selector a message's
// envelope names (ClientAccountSelector), as E-MailRelay does. It is nil
// when the default line says "no login" and no line has a selector. ok is
// false when the file has no default line.
func (s *Secrets) ClientAccounts() (a remote.Authenticator, ok bool) {
	def, ok := s.ClientAuth("")
	if !ok {
		return nil, false
	}
	if len(s.clients) > 1 {
		return accounts{s: s, def: def}, true
	}
	if def == nil {
		return nil, true
	}
	return def, true
}

// accounts is the remote.Accounts of a file with selector lines.
type accounts struct {
	s   *Secrets
	def *ClientLogin // nil: the default line says "no login"
}

func (a accounts) Client(mechs []string) (sasl.Client, error) {
	if a.def == nil {
		return nil, errors.New("auth: the default client line says no login")
	}
	return a.def.Client(mechs)
}

func (a accounts) Account(selector string) (remote.Authenticator, bool) {
	l, ok := a.s.ClientAuth(selector)
	if !ok || l == nil {
		return nil, ok // never a typed nil: nil is "no login"
	}
	return l, true
}

// Client picks a mechanism from those the server advertised and returns
// the SASL client for it. It prefers CRAM-MD5, which never sends the password, then PLAIN,
// then LOGIN; an md5 line can only do CRAM-MD5 and an oauth line only
// XOAUTH2. When the server offers nothing usable it returns an error, and
// the delivery is deferred.
func (l *ClientLogin) Client(mechs []string) (sasl.Client, error) {
	c := l.c
	has := func(m string) bool {
		return slices.ContainsFunc(mechs, func(x string) bool { return strings.EqualFold(x, m) })
	}
	switch c.kind {
	case kindOAuth:
		if has("XOAUTH2") {
			return &xoauth2Client{user: c.user, token: c.password}, nil
		}
	case kindOAuth2:
		if has("XOAUTH2") {
			return &refreshingXOAUTH2{ts: c.tokens, inner: xoauth2Client{user: c.user}}, nil
		}
	case kindMD5:
		if has("CRAM-MD5") {
			return &cramClient{user: c.user, state: c.state}, nil
		}
	case kindPlain:
		switch {
		case has("CRAM-MD5"):
			return &cramClient{user: c.user, state: maskKey([]byte(c.password))}, nil
		case has(sasl.Plain):
			return sasl.NewPlainClient("", c.user, c.password), nil
		case has(sasl.Login):
			return &loginClient{user: c.user, pass: c.password}, nil
		}
	}
	want := map[secretKind]string{
		kindOAuth:  "XOAUTH2",
		kindOAuth2: "XOAUTH2",
		kindMD5:    "CRAM-MD5 (the secret is an md5 state)",
		kindPlain:  "CRAM-MD5, PLAIN or LOGIN",
	}[c.kind]
	offered := strings.Join(mechs, " ")
	if offered == "" {
		offered = "no AUTH at all"
	}
	if c.line == 0 {
		return nil, fmt.Errorf("auth: the server offers %s; the login needs %s", offered, want)
	}
	return nil, fmt.Errorf("auth: the server offers %s; the client secret on line %d needs %s", offered, c.line, want)
}

// cramClient is the client side of CRAM-MD5 (RFC 2195).
type cramClient struct {
	user  string
	state md5State
	done  bool
}

func (c *cramClient) Start() (string, []byte, error) { return "CRAM-MD5", nil, nil }

func (c *cramClient) Next(challenge []byte) ([]byte, error) {
	if c.done {
		return nil, sasl.ErrUnexpectedServerChallenge
	}
	c.done = true
	mac := c.state.hmac(challenge)
	resp := make([]byte, 0, len(c.user)+1+hex.EncodedLen(md5.Size))
	resp = append(resp, c.user...)
	resp = append(resp, ' ')
	return hex.AppendEncode(resp, mac[:]), nil
}

// loginClient is the client side of LOGIN. go-sasl's sends the user as an
// initial response and insists on the exact challenge "Password:"; this one
// waits to be asked, and goes by the challenge when it names the user or the
// password, else by order.
type loginClient struct {
	user, pass string
	step       int
}

func (l *loginClient) Start() (string, []byte, error) { return sasl.Login, nil, nil }

func (l *loginClient) Next(challenge []byte) ([]byte, error) {
	ch := strings.ToLower(string(challenge))
	l.step++
	switch {
	case l.step > 2:
		return nil, sasl.ErrUnexpectedServerChallenge
	case strings.HasPrefix(ch, "user"):
		return []byte(l.user), nil
	case strings.HasPrefix(ch, "pass"):
		return []byte(l.pass), nil
	case l.step == 1:
		return []byte(l.user), nil
	default:
		return []byte(l.pass), nil
	}
}

// xoauth2Client is the client side of Google's and Microsoft's XOAUTH2:
// "user=USER^Aauth=Bearer TOKEN^A^A" as the initial response. A failure
// comes as a 334 with a JSON error, to which the client answers with an
// empty line to get the final reply.
type xoauth2Client struct {
	user, token string
	failed      bool
}

func (x *xoauth2Client) Start() (string, []byte, error) {
	if strings.ContainsRune(x.user+x.token, '\x01') {
		return "", nil, errors.New("auth: XOAUTH2 user or token holds a ^A")
	}
	return "XOAUTH2", []byte("user=" + x.user + "\x01auth=Bearer " + x.token + "\x01\x01"), nil
}

func (x *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	if x.failed {
		return nil, sasl.ErrUnexpectedServerChallenge
	}
	x.failed = true
	return []byte{}, nil
}

// PlainLogin is a login with a user name and password, as a "client plain"
// line of a secrets file or a Postfix smtp_sasl_password_maps entry.
func PlainLogin(user, password string) *ClientLogin {
	return &ClientLogin{c: &clientSecret{kind: kindPlain, user: user, password: password}}
}
