package dkim

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/relaykeeper/relaykeeper/internal/filter"
)

var _ filter.Filter = (*signFilter)(nil)

const testMessage = "Received: from client.example by relay.example.org; Sun, 22 Nov 2026 03:00:00 +0000\r\n" +
	"From: Alice <alice@example.org>\r\n" +
	"To: bob@example.net\r\n" +
	"Subject: hello\r\n" +
	"\tworld\r\n" +
	"Date: Sun, 22 Nov 2026 03:00:00 +0000\r\n" +
	"Message-ID: <1@example.org>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"X-Mailer: test\r\n" +
	"\r\n" +
	"Hello Bob.\r\n" +
	"\r\n" +
	"Alice\r\n"

// testKey is a key pair: the private key's PEM file and the DNS TXT record
// for the public key.
type testKey struct {
	name string
	pem  []byte
	txt  string
}

func rsaKey(t testing.TB, bits int, pkcs8 bool) testKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, bits)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	block := &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
	name := fmt.Sprintf("rsa%d-pkcs1", bits)
	if pkcs8 {
		der, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		block = &pem.Block{Type: "PRIVATE KEY", Bytes: der}
		name = fmt.Sprintf("rsa%d-pkcs8", bits)
	}
	return testKey{name, pem.EncodeToMemory(block), "v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub)}
}

func ed25519Key(t testing.TB) testKey {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return testKey{"ed25519", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}
}

func (k testKey) signer(t testing.TB, domain string) *Signer {
	t.Helper()
	path := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(path, k.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSigner(domain, "sel", path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verify checks a message's one signature with the key published as
// sel._domainkey.example.org.
func verify(t *testing.T, k testKey, msg string) *dkim.Verification {
	t.Helper()
	lookup := func(domain string) ([]string, error) {
		if domain != "sel._domainkey.example.org" {
			return nil, fmt.Errorf("no TXT record for %s", domain)
		}
		return []string{k.txt}, nil
	}
	vs, err := dkim.VerifyWithOptions(strings.NewReader(msg), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(vs) != 1 {
		t.Fatalf("Verify found %d signatures; want 1", len(vs))
	}
	return vs[0]
}

func TestSignVerify(t *testing.T) {
	for _, k := range []testKey{rsaKey(t, 2048, false), rsaKey(t, 1024, true), ed25519Key(t)} {
		t.Run(k.name, func(t *testing.T) {
			s := k.signer(t, "Example.ORG.")
			// Once from a file-like reader (read twice), once from a
			// plain reader (held in memory).
			for _, r := range []io.Reader{strings.NewReader(testMessage), io.MultiReader(strings.NewReader(testMessage))} {
				var out bytes.Buffer
				if err := s.Sign(r, &out); err != nil {
					t.Fatal(err)
				}
				got := out.String()
				if !strings.HasPrefix(got, "DKIM-Signature: ") || !strings.HasSuffix(got, "\r\n"+testMessage) {
					t.Fatalf("Sign wrote:\n%s", got)
				}
				sig := got[:len(got)-len(testMessage)]
				for _, want := range []string{"d=example.org;", "s=sel;", "c=relaxed/relaxed;"} {
					if !strings.Contains(sig, want) {
						t.Errorf("signature lacks %q:\n%s", want, sig)
					}
				}
				v := verify(t, k, got)
				if v.Err != nil {
					t.Errorf("Verify: %v", v.Err)
				}
				keys := strings.ToLower(strings.Join(v.HeaderKeys, ":"))
				if want := "from:from:to:subject:date:message-id:mime-version:content-type"; keys != want {
					t.Errorf("signed fields %s; want %s", keys, want)
				}
				// A changed body no longer verifies.
				if v := verify(t, k, strings.Replace(got, "Hello Bob", "Hello Eve", 1)); v.Err == nil {
					t.Error("a changed body verifies")
				}
				// Nor does an added From.
				if v := verify(t, k, strings.Replace(got, "To:", "From: eve@example.net\r\nTo:", 1)); v.Err == nil {
					t.Error("a message with an added From verifies")
				}
			}
		})
	}
}

func TestSignNoFrom(t *testing.T) {
	s := ed25519Key(t).signer(t, "example.org")
	err := s.Sign(strings.NewReader("Subject: x\r\n\r\nbody\r\n"), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "From") {
		t.Errorf("Sign of a message without From = %v; want an error about From", err)
	}
}

func TestLoadSignerErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, _ := x509.MarshalPKCS8PrivateKey(ec)
	// Go refuses such keys itself unless told otherwise; LoadSigner must
	// refuse them either way.
	t.Setenv("GODEBUG", "rsa1024min=0")
	small, err := rsa.GenerateKey(rand.Reader, 512)
	if err != nil {
		t.Fatal(err)
	}
	good := write("good.pem", ed25519Key(t).pem)
	tests := []struct {
		name, domain, selector, file, want string
	}{
		{"missing", "example.org", "sel", filepath.Join(dir, "missing.pem"), "missing.pem"},
		{"not PEM", "example.org", "sel", write("text.pem", []byte("hello\n")), "text.pem: no PEM private key"},
		{"public key", "example.org", "sel", write("pub.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte{1}})), "pub.pem: PEM block \"PUBLIC KEY\""},
		{"EC key", "example.org", "sel", write("ec.pem", pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER})), "ec.pem: unsupported key type"},
		{"small RSA", "example.org", "sel", write("small.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(small)})), "small.pem: RSA key of 512 bits"},
		{"broken DER", "example.org", "sel", write("broken.pem", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: []byte{1, 2, 3}})), "broken.pem: "},
		{"bad domain", "example .org", "sel", good, "bad domain"},
		{"empty selector", "example.org", "", good, "bad selector"},
	}
	for _, tt := range tests {
		_, err := LoadSigner(tt.domain, tt.selector, tt.file)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "dkim: ") {
			t.Errorf("%s: LoadSigner = %v; want an error containing %q", tt.name, err, tt.want)
		}
	}
}

func writeContent(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "6B0252D2F906FE64.content")
	if err := os.WriteFile(p, []byte(content), 0o640); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFilter(t *testing.T) {
	k := rsaKey(t, 1024, false)
	f := k.signer(t, "example.org").Filter()
	if got, want := f.String(), "dkim:sel._domainkey.example.org"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	ctx := context.Background()

	p := writeContent(t, testMessage)
	if res := f.Run(ctx, p, p+".envelope"); res.Outcome != filter.OK || res.Reason != "" {
		t.Fatalf("Run = %v; want ok", res)
	}
	signed, _ := os.ReadFile(p)
	if !bytes.HasPrefix(signed, []byte("DKIM-Signature: ")) || !bytes.HasSuffix(signed, []byte(testMessage)) {
		t.Fatalf("content after Run:\n%s", signed)
	}
	if v := verify(t, k, string(signed)); v.Err != nil {
		t.Errorf("Verify: %v", v.Err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode = %v; want 0640", fi.Mode())
	}
	if tmps, _ := filepath.Glob(filepath.Join(filepath.Dir(p), "*.tmp")); len(tmps) > 0 {
		t.Errorf("temporary files left: %v", tmps)
	}

	// A second run (a client filter before a retry) leaves it alone.
	if res := f.Run(ctx, p, ""); res.Outcome != filter.OK || res.Reason != "dkim: signed already" {
		t.Errorf("second Run = %v; want ok, signed already", res)
	}
	if again, _ := os.ReadFile(p); !bytes.Equal(again, signed) {
		t.Errorf("second Run changed the content:\n%s", again)
	}

	tests := []struct {
		from   string
		signed bool
		reason string
	}{
		{"From: MAILER-DAEMON@relay.example.org", true, ""},
		{"From: \"Alice, A.\" <alice@EXAMPLE.org>", true, ""},
		{"From: bob@example.net", false, "dkim: not signed: From domain example.net is not example.org"},
		{"From: bob@notexample.org", false, "dkim: not signed: From domain notexample.org is not example.org"},
		{"From: undisclosed", false, "dkim: not signed: From field without an address"},
		{"X-From: alice@example.org", false, "dkim: not signed: no From field"},
	}
	for _, tt := range tests {
		msg := strings.Replace(testMessage, "From: Alice <alice@example.org>", tt.from, 1)
		p := writeContent(t, msg)
		res := f.Run(ctx, p, "")
		if res.Outcome != filter.OK || res.Reason != tt.reason {
			t.Errorf("%s: Run = %v; want ok (%s)", tt.from, res, tt.reason)
		}
		got, _ := os.ReadFile(p)
		if isSigned := bytes.HasPrefix(got, []byte("DKIM-Signature:")); isSigned != tt.signed {
			t.Errorf("%s: signed = %v; want %v", tt.from, isSigned, tt.signed)
		}
	}

	if res := f.Run(ctx, filepath.Join(t.TempDir(), "missing.content"), ""); res.Outcome != filter.TempFail {
		t.Errorf("Run on a missing file = %v; want tempfail", res)
	}
}
