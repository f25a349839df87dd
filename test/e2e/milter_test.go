package e2e

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	gomilter "github.com/emersion/go-milter"
	"github.com/emersion/go-msgauth/dkim"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// tagMilter adds a header to every message and quarantines those whose
// subject says so.
type tagMilter struct{ quarantine atomic.Bool }

func (m *tagMilter) Connect(string, string, uint16, net.IP, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}
func (m *tagMilter) Helo(string, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}
func (m *tagMilter) MailFrom(string, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}
func (m *tagMilter) RcptTo(string, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}
func (m *tagMilter) Header(name, value string, _ *gomilter.Modifier) (gomilter.Response, error) {
	if strings.EqualFold(name, "Subject") && strings.Contains(value, "quarantine me") {
		m.quarantine.Store(true)
	}
	return gomilter.RespContinue, nil
}
func (m *tagMilter) Headers(textproto.MIMEHeader, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}
func (m *tagMilter) BodyChunk([]byte, *gomilter.Modifier) (gomilter.Response, error) {
	return gomilter.RespContinue, nil
}
func (m *tagMilter) Abort(*gomilter.Modifier) error { return nil }

func (m *tagMilter) Body(mod *gomilter.Modifier) (gomilter.Response, error) {
	mod.AddHeader("X-Milter-Seen", "yes")
	if m.quarantine.Swap(false) {
		mod.Quarantine("test quarantine")
	}
	return gomilter.RespAccept, nil
}

// TestMilterAndDKIM: a milter configured in [milter] changes headers and
// quarantines (the message is held); built-in [dkim] signing signs mail
// from its domain as it leaves, and the signature verifies.
func TestMilterAndDKIM(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &gomilter.Server{NewMilter: func() gomilter.Milter { return &tagMilter{} },
		Actions: gomilter.OptAddHeader | gomilter.OptQuarantine}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	_, port, _ := net.SplitHostPort(ln.Addr().String())

	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	keyFile := filepath.Join(t.TempDir(), "dkim.key")
	os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600)
	pub, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)

	sink := harness.NewFakeSMTP(t, harness.Script{})
	spool := t.TempDir()
	cfg := writeConfig(t, fmt.Sprintf("[milter]\nserver = [\"inet:%s@127.0.0.1\"]\n[dkim]\ndomain = \"example.org\"\nselector = \"rk\"\nkey = %q\n", port, keyFile))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-to", sink.Addr(), "--forward-on-disconnect", "--no-bounces",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", spool)

	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"},
		"From: Alice <alice@example.org>\nTo: bob@example.net\nSubject: signed\nMessage-ID: <m1@example.org>\n\nhello\n")
	tx := sink.WaitTransactions(t, 1, 15*time.Second)[0]
	if !bytes.Contains(tx.Data, []byte("X-Milter-Seen: yes")) {
		t.Errorf("the milter's header is missing:\n%s", head(string(tx.Data)))
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(tx.Data), &dkim.VerifyOptions{
		LookupTXT: func(domain string) ([]string, error) {
			if domain != "rk._domainkey.example.org" {
				return nil, fmt.Errorf("no such name %s", domain)
			}
			return []string{"v=DKIM1; k=rsa; p=" + base64.StdEncoding.EncodeToString(pub)}, nil
		},
	})
	if err != nil || len(verifs) != 1 || verifs[0].Err != nil || verifs[0].Domain != "example.org" {
		t.Errorf("DKIM verification = %+v, %v; want one valid signature for example.org", verifs, err)
	}

	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"},
		"From: alice@example.org\nTo: bob@example.net\nSubject: quarantine me\n\nsuspicious\n")
	if !waitFor(10*time.Second, func() bool {
		ents, _ := os.ReadDir(spool)
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".envelope.held") {
				return true
			}
		}
		return false
	}) {
		t.Errorf("the quarantined message is not held in the spool")
	}
	time.Sleep(500 * time.Millisecond)
	if n := len(sink.Transactions()); n != 1 {
		t.Errorf("the smarthost got %d messages; want 1 (the quarantined one is held)", n)
	}
}
