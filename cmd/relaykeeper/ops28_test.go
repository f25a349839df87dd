package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOps28CompletionValues: after a switch that takes a value that is no
// file (--port 25, --log-format json, --forward-to host:smtp) the
// completion offers nothing, as its script's comment says, where it
// offered every switch; a word that is no switch completes a file name,
// for E-MailRelay's configuration file that relaykeeper takes as an
// argument ("relaykeeper /etc/emailrelay.conf"), where it offered
// nothing, or switches.
func TestOps28CompletionValues(t *testing.T) {
	script := completionScript(t)
	dir := t.TempDir()
	conf := filepath.Join(dir, "emailrelay.conf")
	if err := os.WriteFile(conf, []byte("as-server\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		words string
		want  string
	}{
		{"relaykeeper --port ", ""},
		{"relaykeeper -p ", ""},
		{"relaykeeper --log-format ", ""},
		{"relaykeeper --as-proxy ", ""},
		{"relaykeeper --as-server --forward-to ", ""},
		{"relaykeeper " + filepath.Join(dir, "emailr"), conf},
		{"relaykeeper --as-server " + filepath.Join(dir, "emailr"), conf},
		{"relaykeeper --spool-dir " + filepath.Join(dir, "emailr"), conf},
		{"relaykeeper --as-server --as-c", "--as-client"},
		{"relaykeeper qu", "queue"},
	}
	for _, tt := range tests {
		if got := complete(t, script, tt.words); got != tt.want {
			t.Errorf("completing %q = %q; want %q", tt.words, got, tt.want)
		}
	}
}

// TestOps28CompletionStates: "queue list --state <TAB>" offers the states
// (it offered the current directory's files), each one that queue takes.
func TestOps28CompletionStates(t *testing.T) {
	script := completionScript(t)
	got := complete(t, script, "relaykeeper queue delete --state ")
	if want := "new ready claimed failed held journal"; got != want {
		t.Errorf("completing \"queue delete --state \" = %q; want %q", got, want)
	}
	spoolDir := t.TempDir()
	for _, st := range strings.Fields(got) {
		var out, errs bytes.Buffer
		if code := run([]string{"queue", "list", "--state", st, "--spool-dir", spoolDir}, &out, &errs); code != exitOK {
			t.Errorf("queue list --state %s = %d; stderr %q", st, code, errs.String())
		}
	}
}
