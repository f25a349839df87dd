package dkim

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
)

// FuzzParseKey reads arbitrary bytes as a DKIM key file: parseKey either
// refuses them with a one-line error or returns a key that signs.
func FuzzParseKey(f *testing.F) {
	for _, k := range []testKey{ed25519Key(f), rsaKey(f, 1024, false), rsaKey(f, 1024, true)} {
		f.Add(k.pem)
		f.Add(k.pem[:len(k.pem)/2])
		f.Add(bytes.ReplaceAll(k.pem, []byte("\n"), []byte("\r\n")))
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ec)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: der}))
	f.Add(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{0x30, 0}}))
	f.Add([]byte("-----BEGIN PRIVATE KEY-----\n\x00\xff\n-----END PRIVATE KEY-----\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 16<<10 {
			return // a large RSA key takes long to check, and a key file is the operator's
		}
		key, err := parseKey(data)
		if err != nil {
			if s := err.Error(); strings.ContainsAny(s, "\r\n") {
				t.Fatalf("parseKey: error %q spans lines", s)
			}
			return
		}
		s := &Signer{domain: "example.org", selector: "sel", key: key}
		var out bytes.Buffer
		if err := s.Sign(strings.NewReader(testMessage), &out); err != nil {
			t.Fatalf("a key that parsed does not sign: %v", err)
		}
		if !strings.HasPrefix(out.String(), "DKIM-Signature: ") {
			t.Fatalf("signed message starts %q", out.String()[:min(out.Len(), 40)])
		}
	})
}
