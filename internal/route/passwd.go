package route

import (
	"errors"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/auth"
	"github.com/relaykeeper/relaykeeper/internal/table"
)

// passwords are Postfix's smtp_sasl_password_maps: the relay's logins
// ("username:password") to the hosts it sends to, found as Postfix's smtp
// client finds them (smtp_sasl_glue.c): by the envelope sender when
// smtp_sender_dependent_authentication is on, else by the next hop's host
// name, then by the next hop as written ("[smtp.example.com]:587").
type passwords struct {
	maps     []mapTable
	bySender bool
	delim    string
}

// loginMark joins a destination's key and the password-map key its
// sender's login was found under: mail of senders with different logins
// never shares a session, as Postfix's smtp client keeps no cached
// connection across sender-dependent logins.
const loginMark = " login="

// openPasswords opens the tables and checks the entries it can read in
// advance; a value without a ':' is refused (FILE:LINE), never shown.
func openPasswords(specs []string, bySender bool, delim string) (*passwords, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	maps, errs := openTables("smtp_sasl_password_maps", specs, func(v string) error {
		if !strings.Contains(v, ":") {
			return errors.New("the value is not username:password")
		}
		return nil
	}, nil)
	return &passwords{maps: maps, bySender: bySender, delim: delim}, errors.Join(errs...)
}

// senderKey is the key under which sender's login is listed, in the order
// of Postfix's mail_addr_find (the address, without its extension,
// @domain), or "" when logins do not depend on the sender, the sender is
// null, or it has no entry.
func (p *passwords) senderKey(sender string) string {
	sender = trimAngle(sender)
	if p == nil || !p.bySender || sender == "" {
		return ""
	}
	keys := []string{sender}
	if s := table.StripExtension(sender, p.delim); s != "" {
		keys = append(keys, s)
	}
	if _, domain := splitAddr(sender); domain != "" {
		keys = append(keys, "@"+domain)
	}
	for _, k := range keys {
		if _, ok := find(p.maps, k, true); ok {
			return k
		}
	}
	return ""
}

// login is the login for a session of rt, whose sender's entry (if any)
// was found under senderKey; nil when the maps have none.
func (p *passwords) login(rt Route, senderKey string) *auth.ClientLogin {
	if p == nil {
		return nil
	}
	keys := []string{senderKey, rt.Host, rt.NextHop}
	// Postfix users write the port as a service name too.
	for port, name := range map[string]string{":587": ":submission", ":465": ":submissions"} {
		if s, ok := strings.CutSuffix(rt.NextHop, port); ok {
			keys = append(keys, s+name)
		}
	}
	for _, k := range keys {
		if v, ok := find(p.maps, k, true); ok {
			user, pass, found := strings.Cut(v, ":")
			if !found || user == "" {
				return nil // refused at start when the table could be read in advance
			}
			return auth.PlainLogin(user, pass)
		}
	}
	return nil
}

// escapeLoginKey makes a password-map key fit in a destination key with
// no space in it, one to one.
func escapeLoginKey(k string) string {
	return strings.NewReplacer("%", "%25", " ", "%20").Replace(k)
}
