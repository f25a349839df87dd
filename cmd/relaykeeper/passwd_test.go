package main

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/relaykeeper/relaykeeper/internal/auth"
)

func runPasswdTest(args []string, stdin string) (status int, stdout, stderr string) {
	var out, errb bytes.Buffer
	status = runPasswd(args, strings.NewReader(stdin), &out, &errb)
	return status, out.String(), errb.String()
}

func TestPasswdOutput(t *testing.T) {
	tests := []struct {
		args  []string
		stdin string
		want  string // a regular expression for stdout
	}{
		{[]string{"alice"}, "s3cret\n", `^server bcrypt alice \$2a\$10\$[./A-Za-z0-9]{53}\n$`},
		{nil, "s3cret\n", `^\$2a\$10\$[./A-Za-z0-9]{53}\n$`},
		{[]string{"--plain", "alice"}, "p=ss word\r\n", `^server plain alice p\+3Dss\+20word\n$`},
		{[]string{"--plain"}, "p+ss", `^p\+2Bss\n$`},
		{[]string{"--plain", "a b"}, "pw\n", `^server plain a\+20b pw\n$`},
		{[]string{"--md5", "dave"}, "davepw\n", `^server md5 dave ` + regexp.QuoteMeta(auth.MD5State("davepw")) + `\n$`},
		{[]string{"-md5"}, "davepw\n", `^` + regexp.QuoteMeta(auth.MD5State("davepw")) + `\n$`},
	}
	for _, tt := range tests {
		status, stdout, stderr := runPasswdTest(tt.args, tt.stdin)
		if status != exitOK || stderr != "" {
			t.Errorf("passwd %q: status %d, stderr %q; want 0, nothing", tt.args, status, stderr)
		}
		if !regexp.MustCompile(tt.want).MatchString(stdout) {
			t.Errorf("passwd %q = %q; want %s", tt.args, stdout, tt.want)
		}
	}
}

// TestPasswdRoundTrip pastes each kind of output line into a secrets file
// and logs in with the password.
func TestPasswdRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, flag := range []string{"", "--plain", "--md5"} {
		args := []string{"user@example.com"}
		if flag != "" {
			args = append([]string{flag}, args...)
		}
		const pw = "correct horse = battery+staple"
		status, stdout, stderr := runPasswdTest(args, pw+"\n")
		if status != exitOK {
			t.Fatalf("passwd %q: status %d: %s", args, status, stderr)
		}
		path := filepath.Join(dir, "secrets"+flag)
		if err := os.WriteFile(path, []byte(stdout), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := auth.LoadSecrets(path)
		if err != nil {
			t.Fatalf("passwd %q printed a line LoadSecrets refuses: %v", args, err)
		}
		if !s.Verify("user@example.com", pw) || s.Verify("user@example.com", pw+"x") {
			t.Errorf("passwd %q: the line does not verify the password alone", args)
		}
	}
}

func TestPasswdErrors(t *testing.T) {
	tests := []struct {
		args   []string
		stdin  string
		status int
		stderr string
	}{
		{nil, "", exitFailure, "relaykeeper passwd: no password on the standard input\n"},
		{nil, "\n", exitFailure, "relaykeeper passwd: empty password\n"},
		{[]string{"u"}, strings.Repeat("x", 73) + "\n", exitFailure, "relaykeeper passwd: auth: password longer than 72 bytes, which bcrypt cannot hash\n"},
		{[]string{"--plain", "--md5"}, "pw\n", exitUsage, "relaykeeper passwd: --plain and --md5 exclude each other\n"},
		{[]string{"a", "b"}, "pw\n", exitUsage, "relaykeeper passwd: unexpected argument \"b\" (see relaykeeper passwd --help)\n"},
		{[]string{"--sha1"}, "pw\n", exitUsage, "relaykeeper passwd: unknown switch --sha1 (see relaykeeper passwd --help)\n"},
	}
	for _, tt := range tests {
		status, stdout, stderr := runPasswdTest(tt.args, tt.stdin)
		if status != tt.status || stderr != tt.stderr || stdout != "" {
			t.Errorf("passwd %q = %d, stdout %q, stderr %q; want %d, nothing, %q", tt.args, status, stdout, stderr, tt.status, tt.stderr)
		}
	}
}

func TestPasswdHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		status, stdout, stderr := runPasswdTest([]string{arg}, "")
		if status != exitOK || !strings.HasPrefix(stdout, "usage: relaykeeper passwd") || stderr != "" {
			t.Errorf("passwd %s = %d, %q, %q; want 0 and the usage", arg, status, stdout, stderr)
		}
	}
}
