package smtpd

// Listener roles, as --interface names them ("submission=[::]:587").
const (
	// RoleSMTP is plain SMTP (port 25): STARTTLS offered when configured.
	RoleSMTP = "smtp"
	// RoleSubmission is message submission (port 587, RFC 6409).
	RoleSubmission = "submission"
	// RoleSMTPS is submission over TLS from the first byte (port 465,
	// RFC 8314).
	RoleSMTPS = "smtps"
	// RoleReinject is the after-queue content filter's return path.
	RoleReinject = "reinject"
)

// ForRole adapts the options of a listener to its role: plain SMTP offers
// STARTTLS when there is a certificate and offerTLS (--server-tls) says so,
// and takes implicitTLS and requireTLS (--server-tls-connection,
// --server-tls-required); submission
// requires TLS (the configuration has a certificate for it) and, with
// accounts, AUTH; smtps
// speaks TLS from the first byte and, with accounts, requires AUTH; the
// reinjection port has been through policy and filters already, so it
// has none, and no TLS.
func (o Options) ForRole(role string, offerTLS, implicitTLS, requireTLS bool) Options {
	switch role {
	case RoleSMTP:
		if !offerTLS && !implicitTLS {
			// A certificate for the submission and smtps
			// listeners is not an offer of STARTTLS here.
			o.TLSConfig = nil
		}
		o.ImplicitTLS = implicitTLS
		o.RequireTLS = requireTLS
	case RoleSubmission:
		o.RequireTLS = o.TLSConfig != nil
		o.RequireAuth = o.Auth != nil
	case RoleSMTPS:
		o.ImplicitTLS = true
		o.RequireAuth = o.Auth != nil
	case RoleReinject:
		o.Reinject = true
		o.Policy, o.HeaderChecks, o.Filter, o.Auth, o.Enforcer = nil, nil, nil, nil, nil
		// Mapped once, as it was received the first time.
		o.Canonical = nil
		// Counted once too: the filter hands back what the relay
		// sent it, and is no client to put off.
		o.Rates = nil
		o.TLSConfig = nil
	}
	return o
}
