package auth

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/internal/remote"
)

// password is what the login in force for selector sends with PLAIN.
func password(t *testing.T, a remote.Accounts, selector string) string {
	t.Helper()
	l, ok := a.Account(selector)
	if !ok || l == nil {
		t.Fatalf("Account(%q) = %v, %v; want a login", selector, l, ok)
	}
	c, err := l.Client([]string{"PLAIN"})
	if err != nil {
		t.Fatal(err)
	}
	_, ir, err := c.Start()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Split(string(ir), "\x00")
	return f[len(f)-1]
}

// TestClientFileReload: a password rotated in --client-auth's file is the
// one the next session sends, once the file changed (or on SIGHUP); a
// version with a bad line or without a default client line is refused
// with its place and the one in force stays; a file of one line logs in
// with it whatever selector an envelope names, as before it could reload.
func TestClientFileReload(t *testing.T) {
	p := filepath.Join(t.TempDir(), "client.secrets")
	write := func(text string, age time.Duration) { writeVersion(t, p, text, age) }
	write("client plain me@rk.test old-pw\n", 3*time.Hour)
	login, f, err := OpenClientFile(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, ok := login.(remote.Accounts)
	if !ok {
		t.Fatalf("OpenClientFile's login is %T; want a remote.Accounts that follows the file", login)
	}
	if got := password(t, a, ""); got != "old-pw" {
		t.Fatalf("password %q; want old-pw", got)
	}
	if got := password(t, a, "work"); got != "old-pw" {
		t.Errorf("one-line file, selector \"work\": password %q; want the line's, old-pw", got)
	}
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))

	write("client plain me@rk.test new-pw\n", 2*time.Hour)
	f.Reload(false, log)
	if got := password(t, a, ""); got != "new-pw" {
		t.Errorf("after the password was rotated: %q; want new-pw", got)
	}
	if !strings.Contains(logged.String(), "client secrets reloaded") {
		t.Errorf("log %q; want \"client secrets reloaded\"", logged.String())
	}
	for _, bad := range []struct{ text, want string }{
		{"client plain me@rk.test pw\nclient nonsense\n", p + ":2:"},
		{"server plain alice apw\n", `no \"client\" line`},
	} {
		logged.Reset()
		write(bad.text, time.Hour)
		f.Reload(false, log)
		if got := password(t, a, ""); got != "new-pw" {
			t.Errorf("after a refused file %q: password %q; want new-pw still in force", bad.text, got)
		}
		if s := logged.String(); !strings.Contains(s, "client secrets not reloaded") || !strings.Contains(s, bad.want) {
			t.Errorf("log for %q: %q; want \"client secrets not reloaded\" and %q", bad.text, s, bad.want)
		}
	}

	// E-MailRelay's inline form has no file to re-read.
	inline, fi, err := OpenClientFile("plain:bWU=:cHc=", nil)
	if err != nil {
		t.Fatal(err)
	}
	fi.Reload(true, log)
	if got := password(t, inline.(remote.Accounts), ""); got != "pw" {
		t.Errorf("inline form: password %q; want pw", got)
	}
	// "client plain = =" alone: no AUTH at all.
	write("client plain = =\n", 0)
	if none, _, err := OpenClientFile(p, nil); err != nil || none != nil {
		t.Errorf("a file that says no login: %v, %v; want nil, nil", none, err)
	}
	var nf *ClientFile
	nf.Reload(true, log)
}
