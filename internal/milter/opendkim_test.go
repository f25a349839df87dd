package milter

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"

	"github.com/relaykeeper/relaykeeper/internal/dkim"
	"github.com/relaykeeper/relaykeeper/internal/filter"
	"github.com/relaykeeper/relaykeeper/internal/spool"
	"github.com/relaykeeper/relaykeeper/test/harness"
)

// opendkim finds the opendkim programs, installing them with apt-get if
// they are missing and the test runs as root; otherwise it skips the test.
func opendkim(t *testing.T) (daemon, genkey string) {
	t.Helper()
	find := func() bool {
		var err1, err2 error
		daemon, err1 = exec.LookPath("opendkim")
		genkey, err2 = exec.LookPath("opendkim-genkey")
		if err1 != nil || err2 != nil {
			// Debian puts them in /usr/sbin, which a user's PATH may lack.
			daemon, genkey = "/usr/sbin/opendkim", "/usr/sbin/opendkim-genkey"
			_, err1 = os.Stat(daemon)
			_, err2 = os.Stat(genkey)
		}
		return err1 == nil && err2 == nil
	}
	if find() {
		return daemon, genkey
	}
	if testing.Short() {
		t.Skip("opendkim is not installed (and -short)")
	}
	if os.Geteuid() != 0 {
		harness.Missing(t, "opendkim is not installed and the test is not root: apt-get install opendkim opendkim-tools")
	}
	if _, err := exec.LookPath("apt-get"); err != nil {
		harness.Missing(t, "opendkim is not installed and there is no apt-get")
	}
	install := func() error {
		cmd := exec.Command("apt-get", "install", "-y", "-q", "opendkim", "opendkim-tools")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%v: %s", err, lastLines(string(out), 5))
		}
		return nil
	}
	if err := install(); err != nil {
		if out, err := exec.Command("apt-get", "update", "-q").CombinedOutput(); err != nil {
			harness.Missing(t, "apt-get update: %v: %s", err, lastLines(string(out), 5))
		}
		if err := install(); err != nil {
			harness.Missing(t, "apt-get install opendkim opendkim-tools: %v", err)
		}
	}
	if !find() {
		harness.Missing(t, "opendkim not found after apt-get install")
	}
	return daemon, genkey
}

func lastLines(s string, n int) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return strings.Join(l[max(0, len(l)-n):], " / ")
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// startOpenDKIM generates a key for test._domainkey.example.org, starts an
// OpenDKIM that signs for example.org (mail from 127.0.0.1 or an
// authenticated client) and verifies everything else against that key, and
// returns its milter address, the key file and the key's TXT record.
func startOpenDKIM(t *testing.T) (addr, keyFile, txt string) {
	t.Helper()
	daemon, genkey := opendkim(t)
	dir := t.TempDir()
	if out, err := exec.Command(genkey, "-D", dir, "-d", "example.org", "-s", "test").CombinedOutput(); err != nil {
		t.Fatalf("opendkim-genkey: %v: %s", err, out)
	}
	keyFile = filepath.Join(dir, "test.private")
	// test.txt is a zone file line: test._domainkey IN TXT ( "v=DKIM1; ..." "p=..." ).
	zone, err := os.ReadFile(filepath.Join(dir, "test.txt"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`"([^"]*)"`).FindAllStringSubmatch(string(zone), -1) {
		txt += m[1]
	}
	if !strings.Contains(txt, "p=") {
		t.Fatalf("no key in test.txt:\n%s", zone)
	}
	dns := filepath.Join(dir, "dns.txt")
	if err := os.WriteFile(dns, []byte("test._domainkey.example.org "+txt+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	port := freePort(t)
	conf := filepath.Join(dir, "opendkim.conf")
	err = os.WriteFile(conf, []byte(strings.Join([]string{
		"Mode sv",
		"Domain example.org",
		"Selector test",
		"KeyFile " + keyFile,
		// Simple canonicalization, OpenDKIM's default, needs the header
		// fields written back exactly as the milter signed them.
		"Canonicalization simple/simple",
		"Socket inet:" + port + "@127.0.0.1",
		"PidFile " + filepath.Join(dir, "opendkim.pid"),
		"AuthservID relaykeeper.test",
		"TestDNSData file:" + dns,
		"Syslog no",
		"Background no",
		// The temporary directory is under /tmp, which others can write.
		"RequireSafeKeys no",
		"",
	}, "\n")), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	logFile, err := os.Create(filepath.Join(dir, "opendkim.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(daemon, "-f", "-x", conf)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start opendkim: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		logFile.Close()
	})
	log := func() string { b, _ := os.ReadFile(logFile.Name()); return string(b) }
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+port, time.Second)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("opendkim exited: %v\n%s", err, log())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("opendkim does not listen on port %s:\n%s", port, log())
		}
	}
	return "inet:" + port + "@127.0.0.1", keyFile, txt
}

// setEnvelope edits a test message's envelope.
func setEnvelope(t *testing.T, path string, edit func(e *spool.Envelope)) {
	t.Helper()
	env := readEnvelope(t, path)
	edit(env)
	if err := os.WriteFile(path, env.Marshal(), 0o640); err != nil {
		t.Fatal(err)
	}
}

// authResults returns OpenDKIM's verdict in the message's
// Authentication-Results field, "" if there is none.
func authResults(content string) string {
	m := regexp.MustCompile(`(?m)^Authentication-Results: relaykeeper\.test;(?:\r\n[ \t].*)*?\s+dkim=(\w+)`).FindStringSubmatch(content)
	if m == nil {
		return ""
	}
	return m[1]
}

func TestOpenDKIM(t *testing.T) {
	addr, keyFile, txt := startOpenDKIM(t)
	m := newMilter(t, addr, Options{Timeout: 10 * time.Second, MacroValues: map[string]string{"j": "relay.example.org"}})
	ctx := context.Background()
	lookup := func(domain string) ([]string, error) {
		if domain != "test._domainkey.example.org" {
			return nil, fmt.Errorf("no TXT record for %s", domain)
		}
		return []string{txt}, nil
	}

	// Signing: a message from example.org submitted from 127.0.0.1.
	cp, ep := writeMessage(t, testContent, "127.0.0.1:49068")
	setEnvelope(t, ep, func(e *spool.Envelope) { e.AuthID = "" })
	if res := m.Run(ctx, cp, ep); res.Outcome != filter.OK || res.Reason != "" {
		t.Fatalf("Run (sign) = %v; want ok", res)
	}
	signed := readFile(t, cp)
	if !strings.HasPrefix(signed, "DKIM-Signature: ") || !strings.HasSuffix(signed, "\r\n"+testContent) {
		t.Fatalf("OpenDKIM did not put a DKIM-Signature first:\n%s", signed)
	}
	if strings.Contains(strings.ReplaceAll(signed, "\r\n", ""), "\n") {
		t.Errorf("signed content has bare LF line endings:\n%q", signed)
	}
	vs, err := msgdkim.VerifyWithOptions(strings.NewReader(signed), &msgdkim.VerifyOptions{LookupTXT: lookup})
	if err != nil || len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.org" {
		t.Errorf("go-msgauth Verify = %+v, %v; want one good signature by example.org", vs, err)
	}

	// Verifying: the signed message arriving from outside. OpenDKIM finds
	// the key in its test DNS data and says so in Authentication-Results.
	verify := func(name, content string) string {
		t.Helper()
		cp, ep := writeMessage(t, content, "192.0.2.7:49068")
		setEnvelope(t, ep, func(e *spool.Envelope) { e.AuthID = "" })
		if res := m.Run(ctx, cp, ep); res.Outcome != filter.OK {
			t.Fatalf("%s: Run (verify) = %v; want ok", name, res)
		}
		return authResults(readFile(t, cp))
	}
	if got := verify("signed by OpenDKIM", signed); got != "pass" {
		t.Errorf("OpenDKIM's verdict on its own signature = %q; want pass", got)
	}
	tampered := strings.Replace(signed, "Hello Bob.", "Hello Eve.", 1)
	if got := verify("tampered", tampered); got != "fail" {
		t.Errorf("OpenDKIM's verdict on a changed body = %q; want fail", got)
	}

	// The built-in signer with the same key: OpenDKIM agrees.
	s, err := dkim.LoadSigner("example.org", "test", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := s.Sign(strings.NewReader(testContent), &b); err != nil {
		t.Fatal(err)
	}
	if got := verify("signed by package dkim", b.String()); got != "pass" {
		t.Errorf("OpenDKIM's verdict on package dkim's signature = %q; want pass", got)
	}

	// An authenticated client from outside is signed for, as with Postfix:
	// OpenDKIM reads {auth_authen}.
	cp, ep = writeMessage(t, testContent, "192.0.2.7:49068")
	if res := m.Run(ctx, cp, ep); res.Outcome != filter.OK {
		t.Fatalf("Run (authenticated) = %v; want ok", res)
	}
	if got := readFile(t, cp); !strings.HasPrefix(got, "DKIM-Signature: ") {
		t.Errorf("mail from an authenticated client was not signed:\n%s", got)
	}
}
