package policy

import (
	"crypto/tls"
	"strings"
)

// PostfixTLS names a TLS session as Postfix's smtpd does in a policy
// request (OpenSSL's words): encryption_protocol "TLSv1.3",
// encryption_cipher "TLS_AES_128_GCM_SHA256" or, before TLS 1.3,
// "ECDHE-RSA-AES256-GCM-SHA384", and encryption_keysize the cipher's
// bits. Policy servers written for Postfix match these strings.
func PostfixTLS(cs tls.ConnectionState) (protocol, cipher string, bits int) {
	protocol = map[uint16]string{tls.VersionTLS10: "TLSv1", tls.VersionTLS11: "TLSv1.1",
		tls.VersionTLS12: "TLSv1.2", tls.VersionTLS13: "TLSv1.3"}[cs.Version]
	if protocol == "" {
		protocol = tls.VersionName(cs.Version)
	}
	cipher = tls.CipherSuiteName(cs.CipherSuite)
	switch {
	case strings.Contains(cipher, "AES_128"):
		bits = 128
	case strings.Contains(cipher, "AES_256"), strings.Contains(cipher, "CHACHA20"):
		bits = 256
	case strings.Contains(cipher, "3DES"):
		bits = 112 // OpenSSL's usable bits of 3DES
	case strings.Contains(cipher, "RC4"):
		bits = 128
	}
	if cs.Version < tls.VersionTLS13 {
		cipher = opensslCipher(cipher)
	}
	return protocol, cipher, bits
}

// opensslCipher turns an IANA TLS 1.2 suite name as Go has it
// ("TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384") into OpenSSL's
// ("ECDHE-RSA-AES256-GCM-SHA384"); a name it does not know stays.
func opensslCipher(iana string) string {
	kx, enc, ok := strings.Cut(strings.TrimPrefix(iana, "TLS_"), "_WITH_")
	if !ok {
		return iana
	}
	var parts []string
	switch kx {
	case "RSA":
	case "ECDHE_RSA", "ECDHE_ECDSA":
		parts = append(parts, strings.ReplaceAll(kx, "_", "-"))
	default:
		return iana
	}
	switch {
	case strings.HasPrefix(enc, "CHACHA20_POLY1305"):
		return strings.Join(append(parts, "CHACHA20-POLY1305"), "-")
	case enc == "3DES_EDE_CBC_SHA":
		if len(parts) == 0 {
			return "DES-CBC3-SHA"
		}
		return strings.Join(append(parts, "DES-CBC3-SHA"), "-")
	case enc == "RC4_128_SHA":
		return strings.Join(append(parts, "RC4-SHA"), "-")
	}
	// AES_128_GCM_SHA256 -> AES128-GCM-SHA256, AES_256_CBC_SHA -> AES256-SHA
	f := strings.Split(enc, "_")
	if len(f) != 4 || f[0] != "AES" {
		return iana
	}
	parts = append(parts, "AES"+f[1])
	if f[2] == "GCM" {
		parts = append(parts, "GCM")
	}
	return strings.Join(append(parts, f[3]), "-")
}
