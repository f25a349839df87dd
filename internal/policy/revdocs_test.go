package policy

import "testing"

// TestRevDocsCcertCNPrintable: a check_ccert_access refusal names the
// certificate's CommonName, as Postfix's does; a client chooses that name,
// so a CR, LF or other unprintable octet in it must not reach the reply
// line.
func TestRevDocsCcertCNPrintable(t *testing.T) {
	for cn, want := range map[string]string{
		"banned.example":    "banned.example",
		"evil\r\n250 ok":    "evil??250 ok",
		"caf\u00e9.example": "caf?.example",
		"":                  "",
	} {
		if got := printableCN(cn); got != want {
			t.Errorf("printableCN(%q) = %q, want %q", cn, got, want)
		}
	}
}

// TestRevDocsPolicyServiceCcert: with client certificates asked for, a
// policy server gets Postfix's ccert_* attributes: the fingerprints of any
// certificate the client showed, and its subject and issuer CommonNames
// only when it verified against the client CAs (Postfix's
// TLS_CERT_IS_TRUSTED). They were always sent empty.
func TestRevDocsPolicyServiceCcert(t *testing.T) {
	attrs := func(r *Request) map[string]string {
		m := map[string]string{}
		for _, a := range policyRequest(StageRcpt, r) {
			m[a.name] = a.value
		}
		return m
	}
	r := Request{TLS: true, CertFingerprint: "AA:BB", PubKeyFingerprint: "CC:DD",
		CertCN: "client.example", CertIssuerCN: "Example CA", CertVerified: true}
	for _, tc := range []struct {
		verified     bool
		subj, issuer string
	}{{true, "client.example", "Example CA"}, {false, "", ""}} {
		r.CertVerified = tc.verified
		got := attrs(&r)
		want := map[string]string{"ccert_subject": tc.subj, "ccert_issuer": tc.issuer,
			"ccert_fingerprint": "AA:BB", "ccert_pubkey_fingerprint": "CC:DD"}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("verified=%v: %s = %q, want %q", tc.verified, k, got[k], v)
			}
		}
	}
}
