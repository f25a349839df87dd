package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestTLS25ReceivedNamesTLSVersionAsPostfix: the Received header of mail
// that came over TLS after a login names the TLS version as docs/auth.md
// shows it and as Postfix writes it, "(using TLSv1.3 with cipher ...)",
// followed by the login (authenticated_header). The relay wrote Go's
// "TLS 1.3", which Received parsers written for Postfix's form miss.
func TestTLS25ReceivedNamesTLSVersionAsPostfix(t *testing.T) {
	t.Parallel()
	r := startAuthRelay(t, plainSecrets, "[auth]\nauthenticated_header = true\n")
	c := loginTLS(t, r.addr(), "127.0.0.1", "alice", "alice pw", authOK)
	mustCmd(t, c, "250", "MAIL FROM:<alice@example.org>")
	mustCmd(t, c, "250", "RCPT TO:<bob@far.example>")
	mustCmd(t, c, "354", "DATA")
	rep := mustCmd(t, c, "250", "%s", strings.TrimSuffix(strings.ReplaceAll(message("tls25"), "\n", "\r\n"), "\r\n")+"\r\n.")
	data, err := os.ReadFile(filepath.Join(r.spool, queuedID(t, rep)+".content"))
	if err != nil {
		t.Fatal(err)
	}
	hdr, _, _ := strings.Cut(string(data), ";")
	want := regexp.MustCompile(`\(using TLSv1\.[23] with cipher [A-Z0-9_]+\)\s+\(Authenticated sender: alice\)\s+by .* with ESMTPSA id `)
	if !want.MatchString(hdr) {
		t.Errorf("Received = %q; want it to match %q", hdr, want)
	}
}
