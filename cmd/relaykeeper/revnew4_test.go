package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRevNew4FileErrorsNamePlace: a certificate, a secrets file or a
// filter program that cannot be opened is reported with where it was set:
// the TOML file and line and key, the switch, or the line of E-MailRelay's
// configuration file. A missing certificate said only "certreload: TLS
// certificate ...", naming an internal package and neither the key nor the
// line; a filter set in the TOML file was blamed on "--filter"; a line of
// /etc/emailrelay.conf was reported as a switch nobody typed.
func TestRevNew4FileErrorsNamePlace(t *testing.T) {
	dir := t.TempDir()
	spool := filepath.Join(dir, "spool")
	missing := filepath.Join(dir, "missing")
	cert := filepath.Join(dir, "cert.pem") // key and certificate
	if err := os.WriteFile(cert, selfSignedPEM(t), 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"--as-server", "--spool-dir", spool, "--port", "1", "--interface", "127.0.0.1"}
	for i, tt := range []struct {
		name string
		toml string   // a TOML configuration file's text, or
		conf string   // the lines of E-MailRelay's after its first three, or
		args []string // switches after base
		want string   // after the file's name, if any
	}{
		{name: "toml certificate", toml: "[tls]\nserver = true\ncertificate = \"" + missing + "\"\n",
			want: ":3: tls.certificate: TLS certificate " + missing},
		{name: "switch certificate", args: []string{"--server-tls", "--server-tls-certificate", missing},
			want: "relaykeeper: --server-tls-certificate: TLS certificate " + missing},
		{name: "conf certificate", conf: "server-tls\nserver-tls-certificate " + missing + "\n",
			want: ":5: --server-tls-certificate: TLS certificate " + missing},
		{name: "toml client verify", toml: "[forward]\nto = \"127.0.0.1:25\"\n[tls]\nclient = true\nclient_verify = \"" + missing + "\"\n",
			want: ":5: tls.client_verify: open " + missing},
		{name: "switch client verify", args: []string{"--forward-to", "127.0.0.1:25", "--client-tls", "--client-tls-verify", missing},
			want: "relaykeeper: --client-tls-verify: open " + missing},
		{name: "conf client certificate", conf: "forward-to 127.0.0.1:25\nclient-tls\nclient-tls-certificate " + missing + "\n",
			want: ":6: --client-tls-certificate: TLS certificate " + missing + " (key " + missing + "): open " + missing},
		{name: "conf server verify", conf: "server-tls\nserver-tls-certificate " + cert + "\nserver-tls-verify " + missing + "\n",
			want: ":6: --server-tls-verify: open " + missing},
		{name: "toml client ca", toml: "[tls]\nserver = true\ncertificate = \"" + cert + "\"\nclient_ca = \"" + missing + "\"\n",
			want: ":4: tls.client_ca: open " + missing},
		{name: "toml debug peers", toml: "[log]\ndebug_peers = [\"" + missing + "\"]\n", want: ":2: log.debug_peers: open " + missing},
		{name: "toml rules", toml: "[forward]\non_disconnect = true\n[enforce]\nrules = \"" + missing + "\"\n", want: ":4: enforce.rules: "},
		{name: "switch welcomelist", args: []string{"--forward-on-disconnect", "--welcomelist", missing + "/x"}, want: "relaykeeper: --welcomelist: "},
		{name: "toml milter", toml: "[milter]\nserver = [\"inet:bad\"]\n", want: ":2: milter.server: \"inet:bad\": "},
		{name: "toml filter", toml: "[filter]\nserver = [\"" + missing + "\"]\n", want: ":2: filter.server: "},
		{name: "switch filter", args: []string{"--filter", missing}, want: "relaykeeper: --filter: "},
		{name: "conf filter", conf: "filter " + missing + "\n", want: ":4: --filter: "},
		{name: "conf client filter", conf: "client-filter " + missing + "\n", want: ":4: --client-filter: "},
		{name: "toml server secrets", toml: "[auth]\nserver_secrets = \"" + missing + "\"\n", want: ":2: auth.server_secrets: "},
		{name: "conf server secrets", conf: "server-auth " + missing + "\n", want: ":4: --server-auth: "},
		{name: "conf client secrets", conf: "forward-to 127.0.0.1:25\nclient-auth " + missing + "\n", want: ":5: --client-auth: "},
		{name: "conf pop secrets", conf: "pop\npop-port 2\npop-auth " + missing + "\n", want: ":6: --pop-auth: "},
		{name: "conf validate", conf: "server-tls\n", want: ":4: --server-tls: TLS for clients needs a certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args, want := append(base, tt.args...), tt.want
			if tt.toml != "" || tt.conf != "" {
				f := filepath.Join(dir, fmt.Sprintf("%d.conf", i))
				text := "as-server\nspool-dir " + spool + "\nport 1\n" + tt.conf + "interface 127.0.0.1\n"
				if args = []string{f}; tt.toml != "" {
					text, args = tt.toml, append([]string{"--config", f}, base...)
				}
				if err := os.WriteFile(f, []byte(text), 0o644); err != nil {
					t.Fatal(err)
				}
				want = "relaykeeper: " + f + want
			}
			var out, errs bytes.Buffer
			done := make(chan int, 1)
			go func() { done <- run(args, &out, &errs) }()
			select {
			case status := <-done:
				if status != exitUsage {
					t.Errorf("status %d; want %d (stderr %q)", status, exitUsage, errs.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("the relay started: %q", errs.String()) // the test binary ends it
			}
			if got := errs.String(); !strings.HasPrefix(got, want) || strings.Contains(got, "certreload") {
				t.Errorf("stderr = %q; want it to start %q", got, want)
			}
		})
	}
}

// selfSignedPEM is a key and a certificate for localhost, in PEM.
func selfSignedPEM(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"localhost"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return append(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
}

// TestRevNew4PostfixEnforcerGetopts: relay-enforcer's switches as its
// manual lists them and as its getopts reads them: "-tv" is "-t -v", and
// "-w columns" (the help's width) is taken. "-tv" and "-w 80" were refused
// with Go's own "flag provided but not defined: -tv"; an unknown switch
// now says "unknown switch -l", naming it as typed.
func TestRevNew4PostfixEnforcerGetopts(t *testing.T) {
	f := newPFEFixture(t)
	os.WriteFile(f.log, []byte(pfMessage("4A0001ABC1", "4B0001ABC1", "mx.spam.test", "203.0.113.7", "bob@spam.test", "u1@gmail.test", "spam-1@spam.test", "bounced", replyUnsolicited)), 0o640)
	status, stdout, stderr := f.run(t, "-tv", "-w", "80")
	if status != 0 || !strings.Contains(stdout, "would-ban") {
		t.Errorf("-tv -w 80: status %d, stdout %q, stderr %q; want test mode's would-ban", status, stdout, stderr)
	}
	if status, _, stderr := f.run(t, "-l"); status != exitUsage || !strings.HasPrefix(stderr, "relaykeeper postfix-enforcer: unknown switch -l") {
		t.Errorf("-l: status %d, stderr %q; want unknown switch -l", status, stderr)
	}
	if status, _, stderr := f.run(t, "-tf"); status != exitUsage || !strings.Contains(stderr, `-f in "-tf" takes a value`) {
		t.Errorf("-tf: status %d, stderr %q; want -f refused in a set", status, stderr)
	}
}
