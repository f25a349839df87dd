package auth

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/emersion/go-sasl"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// ClientFile is --client-auth's secrets file as the relay logs in to its
// smarthost with it: re-read when it changes and on SIGHUP (Reload), so
// that a rotated password (a new Gmail app password, an SES key) is used
// from the next session on without a restart, as Postfix reads a changed
// smtp_sasl_password_maps. A version without a default client line, or
// with a bad line, is refused whole and the one in force stays.
//
// It is a remote.Accounts: each session logs in with the line in force
// when it opens. A ClientFile is safe for concurrent use.
type ClientFile struct{ f secretsFile }

// OpenClientFile reads --client-auth's argument: a secrets file, or
// E-MailRelay's inline "plain:BASE64-USER:BASE64-PASSWORD", which is never
// re-read. log receives OAuth 2 refresh failures (alerts). login is nil
// when the only line says no login ("client plain = ="): the relay then
// never says AUTH.
func OpenClientFile(arg string, log *slog.Logger) (login remote.Authenticator, cf *ClientFile, err error) {
	cf = &ClientFile{secretsFile{path: arg, what: "client"}}
	cf.f.load = func() (*Secrets, error) {
		s, err := LoadClientSecrets(arg)
		if err != nil {
			return nil, err
		}
		s.SetLog(log)
		if _, ok := s.ClientAuth(""); !ok {
			return nil, fmt.Errorf("%s: no \"client\" line", arg)
		}
		return s, nil
	}
	if err := cf.f.open(); err != nil {
		return nil, nil, err
	}
	warnReadable(arg, log)
	if a, _ := cf.f.cur.Load().ClientAccounts(); a == nil {
		return nil, cf, nil
	}
	if _, err := os.Stat(arg); err != nil && strings.HasPrefix(arg, "plain:") {
		cf.f.path = "" // the inline form: nothing to re-read
	}
	return cf, cf, nil
}

// Reload reads the file again if it changed since it was last read, or
// whatever its state with all (SIGHUP), and puts it in force. A nil
// *ClientFile, or one given inline, does nothing.
func (f *ClientFile) Reload(all bool, log *slog.Logger) {
	if f != nil && f.f.path != "" {
		f.f.reload(all, log)
	}
}

// Client is the default line's login of the version in force.
func (f *ClientFile) Client(mechs []string) (sasl.Client, error) {
	def, _ := f.f.cur.Load().ClientAuth("")
	if def == nil {
		return nil, errors.New("auth: the default client line says no login")
	}
	return def.Client(mechs)
}

// Account is the login of the version in force for selector (see
// remote.Accounts).
func (f *ClientFile) Account(selector string) (remote.Authenticator, bool) {
	s := f.f.cur.Load()
	if len(s.clients) == 1 {
		selector = "" // a file of one line logs in with it whatever the envelope names
	}
	l, ok := s.ClientAuth(selector)
	if !ok || l == nil {
		return nil, ok // never a typed nil: nil is "no login"
	}
	return l, true
}
