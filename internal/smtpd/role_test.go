package smtpd

import (
	"crypto/tls"
	"testing"
)

func TestForRole(t *testing.T) {
	base := Options{TLSConfig: &tls.Config{}, Auth: nil}
	if o := base.ForRole(RoleSMTP, true, true, true); !o.ImplicitTLS || !o.RequireTLS || o.RequireAuth {
		t.Errorf("ForRole(smtp, true, true) = implicit %v, require TLS %v, AUTH %v; want true, true, false", o.ImplicitTLS, o.RequireTLS, o.RequireAuth)
	}
	if o := base.ForRole(RoleSubmission, false, true, false); o.ImplicitTLS || !o.RequireTLS || o.RequireAuth {
		t.Errorf("ForRole(submission) without accounts = implicit %v, require TLS %v, AUTH %v; want false, true, false", o.ImplicitTLS, o.RequireTLS, o.RequireAuth)
	}
	if o := (Options{}).ForRole(RoleSubmission, false, false, false); o.RequireTLS {
		t.Error("ForRole(submission) without a certificate requires TLS")
	}
	if o := base.ForRole(RoleSMTPS, false, false, false); !o.ImplicitTLS {
		t.Error("ForRole(smtps) does not speak TLS from the first byte")
	}
	if o := base.ForRole(RoleReinject, true, true, true); !o.Reinject || o.TLSConfig != nil || o.Policy != nil || o.Filter != nil {
		t.Errorf("ForRole(reinject) = %+v; want reinjection without TLS, policy or filters", o)
	}
}

// TestRevTLSForRoleOffer: plain SMTP offers STARTTLS only with --server-tls
// (or speaks TLS from the first byte with --server-tls-connection); the
// certificate that submission and smtps need does not switch it on.
func TestRevTLSForRoleOffer(t *testing.T) {
	base := Options{TLSConfig: &tls.Config{}}
	if o := base.ForRole(RoleSMTP, false, false, false); o.TLSConfig != nil {
		t.Error("ForRole(smtp) without --server-tls offers STARTTLS")
	}
	if o := base.ForRole(RoleSMTP, true, false, false); o.TLSConfig == nil {
		t.Error("ForRole(smtp) with --server-tls offers no STARTTLS")
	}
	if o := base.ForRole(RoleSMTP, false, true, false); o.TLSConfig == nil || !o.ImplicitTLS {
		t.Error("ForRole(smtp) with --server-tls-connection has no TLS")
	}
	if o := base.ForRole(RoleSubmission, false, false, false); o.TLSConfig == nil || !o.RequireTLS {
		t.Error("ForRole(submission) without --server-tls lost its STARTTLS")
	}
}
