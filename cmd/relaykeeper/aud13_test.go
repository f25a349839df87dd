package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAud13StartErrorsNameFileLine: a setting in the configuration file
// that names a file or an address the relay cannot use at start is
// reported at its FILE:LINE, as a value that does not parse is. The
// admin password file, the log files, the spool and the admin HTTP
// address were reported without a line, and log.file and admin.http under
// switches the operator never typed (--log-file, --admin-http).
func TestAud13StartErrorsNameFileLine(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	free := func() string { // a port nobody listens on, for the relay to take
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		return l.Addr().String()
	}
	_, p, _ := net.SplitHostPort(free())
	wild := "0.0.0.0:" + p
	// Under a plain file: nothing can be made there, not even the spool.
	missing := filepath.Join(dir, "plain", "file")
	if err := os.WriteFile(filepath.Join(dir, "plain"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, toml, want string }{
		{"admin.password_file", "[admin]\nhttp = \"" + free() + "\"\npassword_file = %q\n", ":4: admin.password_file: open " + missing},
		{"admin.http wildcard", "[admin]\n\nhttp = \"" + wild + "\"\n", ":4: admin.http: " + wild + ": a password is required"},
		{"admin.http taken", "[admin]\nhttp = \"" + taken.Addr().String() + "\"\n", ":3: admin.http: cannot listen on " + taken.Addr().String()},
		{"log.file", "[log]\nfile = %q\n", ":3: log.file: logfile: open " + missing},
		{"log.mail_log", "[log]\n\nmail_log = %q\n", ":4: log.mail_log: logfile: open " + missing},
		{"spool.dir", "[spool]\ndir = %q\n", ":3: spool.dir: spool directory " + missing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.toml
			if strings.Contains(body, "%q") {
				body = fmt.Sprintf(body, missing)
			}
			cfg := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".toml")
			// Line 1 is the listener, so that the relay gets as far as
			// the setting under test.
			if err := os.WriteFile(cfg, []byte("smtp.interfaces = [\""+free()+"\"]\n"+body), 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"--as-server", "--config", cfg}
			if tc.name != "spool.dir" {
				args = append(args, "--spool-dir", t.TempDir())
			}
			var out, errs bytes.Buffer
			if code := run(args, &out, &errs); code != exitUsage {
				t.Fatalf("run = %d; want %d (stderr %q)", code, exitUsage, errs.String())
			}
			if want := "relaykeeper: " + cfg + tc.want; !strings.HasPrefix(errs.String(), want) {
				t.Errorf("stderr = %q; want it to start with %q", errs.String(), want)
			}
		})
	}
}
