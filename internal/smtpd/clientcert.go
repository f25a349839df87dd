package smtpd

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"strings"
)

// clientCert is what the relay policy knows of a client certificate: its
// SHA-256 fingerprint and that of its public key, in Postfix's form
// (smtpd_tls_fingerprint_digest = sha256: upper-case hex pairs joined by
// colons), its subject's and issuer's CommonNames (Postfix's peer_CN,
// which its check_ccert_access names in a refusal, and issuer_CN), and
// whether it verifies against the client CAs. The handshake asked for it without checking it
// (certreload.AskClientCerts).
func (s *Server) clientCert(cs tls.ConnectionState) (cert, pkey, cn, issuer string, verified bool) {
	if len(cs.PeerCertificates) == 0 {
		return "", "", "", "", false
	}
	leaf := cs.PeerCertificates[0]
	if pool := s.opts.ClientCAs; pool != nil {
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		verified = err == nil
	}
	return fingerprint(leaf.Raw), fingerprint(leaf.RawSubjectPublicKeyInfo), leaf.Subject.CommonName, leaf.Issuer.CommonName, verified
}

func fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}
