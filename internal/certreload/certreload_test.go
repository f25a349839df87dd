package certreload

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed certificate for name and its key, both in
// one PEM file at path, with modification time mt.
func writeCert(t *testing.T, path, name string, mt time.Time) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	data := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})...)
	write(t, path, data, mt)
}

func write(t *testing.T, path string, data []byte, mt time.Time) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, mt, mt); err != nil {
		t.Fatal(err)
	}
}

func commonName(t *testing.T, c *tls.Certificate) string {
	t.Helper()
	x, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return x.Subject.CommonName
}

// watch loads the certificate at path and returns the Reloader, its log,
// and a function that moves its clock past checkEvery and returns the
// common name of the certificate it serves then.
func watch(t *testing.T, path string) (*Reloader, *bytes.Buffer, func() string) {
	t.Helper()
	logs := &bytes.Buffer{}
	l, err := New(path, "", slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	clock := time.Now()
	l.now = func() time.Time { return clock }
	return l, logs, func() string {
		t.Helper()
		clock = clock.Add(2 * checkEvery)
		c, err := l.GetCertificate(nil)
		if err != nil || c == nil {
			t.Fatalf("GetCertificate = %v, %v", c, err)
		}
		return commonName(t, c)
	}
}

func TestReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "both.pem")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	writeCert(t, path, "first", t0)
	l, logs, get := watch(t, path)
	if got := get(); got != "first" {
		t.Errorf("certificate %q; want first", got)
	}

	// A broken renewal: the old certificate stays, and the failure is
	// logged once, not on every handshake.
	write(t, path, []byte("-----BEGIN CERTIFICATE-----\nbroken\n"), t0.Add(time.Minute))
	for range 3 {
		if got := get(); got != "first" {
			t.Errorf("certificate %q after a broken renewal; want the old one", got)
		}
	}
	if n := strings.Count(logs.String(), "not reloaded"); n != 1 {
		t.Errorf("%d log lines for one broken renewal; want 1:\n%s", n, logs.String())
	}
	if err := l.Reload(); err == nil {
		t.Errorf("Reload of a broken file = nil; want the error")
	}

	// A good renewal is picked up.
	writeCert(t, path, "second", t0.Add(2*time.Minute))
	if got := get(); got != "second" {
		t.Errorf("certificate %q after renewal; want second", got)
	}
}

func TestNewFails(t *testing.T) {
	if _, err := New(filepath.Join(t.TempDir(), "missing.pem"), "", nil); err == nil {
		t.Errorf("New of a missing file = nil error")
	}
}

// TestRevTLSReloadOlderFile: files that change to an older modification
// time are a change too: a certificate put back from a backup, or copied
// with its time kept (cp -p, rsync -a, tar), used to be ignored until a
// SIGHUP, because only a newer time counted. A file that is gone for a
// moment (a symlink being replaced) is not.
func TestRevTLSReloadOlderFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "both.pem")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	writeCert(t, path, "current", t0)
	_, logs, get := watch(t, path)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if got := get(); got != "current" {
		t.Errorf("certificate %q with the file gone; want the one in force", got)
	}
	if logs.Len() != 0 {
		t.Errorf("a file gone for a moment was logged:\n%s", logs.String())
	}
	writeCert(t, path, "restored", t0.Add(-24*time.Hour))
	if got := get(); got != "restored" {
		t.Errorf("certificate %q after one with an older time replaced it; want restored", got)
	}
}

// TestTLS25Refresh: SIGHUP's reload logs a renewed certificate and a
// broken one, and is quiet when the files did not change (every logrotate
// night signals the relay).
func TestTLS25Refresh(t *testing.T) {
	path := filepath.Join(t.TempDir(), "both.pem")
	t0 := time.Now().Add(-time.Hour).Truncate(time.Second)
	writeCert(t, path, "first", t0)
	l, logs, _ := watch(t, path)
	l.Refresh()
	if logs.Len() != 0 {
		t.Errorf("Refresh with unchanged files logged:\n%s", logs.String())
	}
	writeCert(t, path, "second", t0.Add(time.Minute))
	l.Refresh()
	if !strings.Contains(logs.String(), "TLS certificate reloaded") || commonName(t, l.cert) != "second" {
		t.Errorf("Refresh after a renewal: serving %q, log:\n%s; want second, logged", commonName(t, l.cert), logs.String())
	}
	logs.Reset()
	write(t, path, []byte("broken"), t0.Add(2*time.Minute))
	l.Refresh()
	if !strings.Contains(logs.String(), "not reloaded") || commonName(t, l.cert) != "second" {
		t.Errorf("Refresh of a broken file: serving %q, log:\n%s; want second, the failure logged", commonName(t, l.cert), logs.String())
	}
}
