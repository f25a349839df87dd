package dkim

import (
	"context"
	"os"

	"bufio"
	"bytes"
	"fmt"
	"github.com/relaykeeper/relaykeeper/internal/filter"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
)

// FuzzSign: whatever message a client submitted, Sign either refuses it
// (no From) or writes one DKIM-Signature field, a CRLF-ended header
// field, followed by the message byte for byte (with the empty line that
// ends the header section added where it had none); and when the
// message's line endings are CRLF the signature verifies.
func FuzzSign(f *testing.F) {
	for _, s := range []string{testMessage, "From: a@example.org\r\n\r\n", "From: a@example.org", "From:\r\n x\r\nSubject: y\r\n\r\nbody",
		"Subject: no from\r\n\r\n", "From : a\r\nDKIM-Signature: v=1;\r\n b=x\r\n\r\n", "From: a\r\n" + strings.Repeat("X", 1200) + ": y\r\n\r\nb", "From: a\nTo: b\n\nlf\n"} {
		f.Add(s)
	}
	k := ed25519Key(f)
	s := k.signer(f, "example.org")
	f.Fuzz(func(t *testing.T, msg string) {
		var out bytes.Buffer
		if err := s.Sign(strings.NewReader(msg), &out); err != nil {
			if err == errNoFrom {
				return
			}
			t.Fatalf("Sign(%q): %v", msg, err)
		}
		got := out.String()
		_, info, _ := readHeader(bufio.NewReader(strings.NewReader(msg)))
		if info.sep != "" && (strings.HasPrefix(msg, "\r\n") || strings.HasPrefix(msg, "\n") || info.ended) {
			t.Fatalf("Sign(%q): adds %q to a header section that ends", msg, info.sep)
		}
		sig, ok := strings.CutSuffix(got, msg[:info.headLen]+info.sep+msg[info.headLen:])
		if !ok || !strings.HasPrefix(sig, "DKIM-Signature: ") || !strings.HasSuffix(sig, "\r\n") {
			t.Fatalf("Sign(%q) wrote %q", msg, got)
		}
		for i, l := range strings.Split(strings.TrimSuffix(sig, "\r\n"), "\r\n") {
			if strings.ContainsAny(l, "\r\n") || (i > 0 && !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "\t")) {
				t.Fatalf("Sign(%q): signature %q is not one field", msg, sig)
			}
		}
		if strings.Contains(strings.ReplaceAll(msg, "\r\n", ""), "\n") || strings.Contains(strings.ReplaceAll(msg, "\r\n", ""), "\r") {
			return // bare CR or LF: verifiers differ
		}
		lookup := func(domain string) ([]string, error) {
			if domain != "sel._domainkey.example.org" {
				return nil, fmt.Errorf("no TXT record for %s", domain)
			}
			return []string{k.txt}, nil
		}
		vs, err := dkim.VerifyWithOptions(strings.NewReader(got), &dkim.VerifyOptions{LookupTXT: lookup})
		if err != nil {
			t.Fatalf("Sign(%q): Verify: %v", msg, err)
		}
		var signed *dkim.Verification
		for _, v := range vs {
			if v.Domain == "example.org" {
				signed = v
			}
		}
		if signed == nil || signed.Err != nil {
			t.Fatalf("Sign(%q) = %q: does not verify: %+v", msg, got, signed)
		}
	})
}

// TestFilterHeaderOnly: a message that is all header, with no empty line
// after it ("DATA", "From: ...", "Subject: ...", "."), or whose body starts
// without one, used to fail signing ("failed to read header: EOF") on every
// delivery attempt, a temporary failure until it expired. It is signed now,
// with the empty line added, and verifies.
func TestFilterHeaderOnly(t *testing.T) {
	k := ed25519Key(t)
	f := k.signer(t, "example.org").Filter()
	for _, tt := range []struct{ in, want string }{
		{"From: alice@example.org\r\nSubject: up\r\n", "From: alice@example.org\r\nSubject: up\r\n\r\n"},
		{"From: alice@example.org\r\nnot a field\r\n", "From: alice@example.org\r\n\r\nnot a field\r\n"},
		{"From: alice@example.org", "From: alice@example.org\r\n\r\n"},
		{"From: alice@example.org\nSubject: up\n", "From: alice@example.org\nSubject: up\n\n"},
	} {
		p := writeContent(t, tt.in)
		if res := f.Run(context.Background(), p, ""); res.Outcome != filter.OK || res.Reason != "" {
			t.Errorf("Run(%q) = %v (%s); want signed", tt.in, res, res.Reason)
			continue
		}
		got, _ := os.ReadFile(p)
		if !bytes.HasPrefix(got, []byte("DKIM-Signature: ")) || !bytes.HasSuffix(got, []byte("\r\n"+tt.want)) {
			t.Errorf("Run(%q): content %q; want the signature and %q", tt.in, got, tt.want)
		}
		if strings.Contains(tt.in, "\r\n") {
			if v := verify(t, k, string(got)); v.Err != nil {
				t.Errorf("Run(%q): Verify: %v", tt.in, v.Err)
			}
		}
	}
}
