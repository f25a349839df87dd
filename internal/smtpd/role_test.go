package smtpd

import (
	"crypto/tls"
	"testing"
)

func TestForRole(t *testing.T) {
	base := Options{TLSConfig: &tls.Config{}, Auth: nil}
	if o := base.ForRole(RoleSMTP, true, true); !o.ImplicitTLS || !o.RequireTLS || o.RequireAuth {
		t.Errorf("ForRole(smtp, true, true) = implicit %v, require TLS %v, AUTH %v; want true, true, false", o.ImplicitTLS, o.RequireTLS, o.RequireAuth)
	}
	if o := base.ForRole(RoleSubmission, true, false); o.ImplicitTLS || !o.RequireTLS || o.RequireAuth {
		t.Errorf("ForRole(submission) without accounts = implicit %v, require TLS %v, AUTH %v; want false, true, false", o.ImplicitTLS, o.RequireTLS, o.RequireAuth)
	}
	if o := (Options{}).ForRole(RoleSubmission, false, false); o.RequireTLS {
		t.Error("ForRole(submission) without a certificate requires TLS")
	}
	if o := base.ForRole(RoleSMTPS, false, false); !o.ImplicitTLS {
		t.Error("ForRole(smtps) does not speak TLS from the first byte")
	}
	if o := base.ForRole(RoleReinject, true, true); !o.Reinject || o.TLSConfig != nil || o.Policy != nil || o.Filter != nil {
		t.Errorf("ForRole(reinject) = %+v; want reinjection without TLS, policy or filters", o)
	}
}
