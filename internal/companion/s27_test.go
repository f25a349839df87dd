package companion

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestS27PostconfNotRunWithoutMainCF: on a machine with Debian's postfix
// package and no /etc/postfix/main.cf, postconf fails after a second's
// pause (every Postfix fatal error pauses), and postfix-enforcer asked it
// three times at start: three seconds late, three warnings of postconf's
// failure. Without main.cf it is not run; the warning names the file.
func TestS27PostconfNotRunWithoutMainCF(t *testing.T) {
	bin, conf := t.TempDir(), t.TempDir()
	ran := filepath.Join(t.TempDir(), "ran")
	// "postconf -dh config_directory" names the build's directory, as
	// FreeBSD's /usr/local/etc/postfix; MAIL_CONFIG, where set, wins.
	script := "#!/bin/sh\nif [ \"$1\" = -dh ]; then echo " + conf + "; exit 0; fi\n" +
		"echo \"$@\" >> " + ran + "\necho 'mynetworks = 127.0.0.0/8'\n"
	if err := os.WriteFile(filepath.Join(bin, "postconf"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	for _, env := range []string{conf, ""} {
		t.Setenv("MAIL_CONFIG", env)
		os.Remove(filepath.Join(conf, "main.cf"))
		os.Remove(ran)
		var log bytes.Buffer
		diag := slog.New(slog.NewTextHandler(&log, nil))
		if _, ok := postconf(diag, "unknown", "mynetworks"); ok {
			t.Errorf("MAIL_CONFIG=%q: postconf without main.cf: ok", env)
		}
		if _, err := os.Stat(ran); err == nil {
			t.Errorf("MAIL_CONFIG=%q: postconf was run without main.cf", env)
		}
		if !strings.Contains(log.String(), "Postfix has no main.cf") || !strings.Contains(log.String(), filepath.Join(conf, "main.cf")) {
			t.Errorf("MAIL_CONFIG=%q: warning %q; want one naming %s", env, log.String(), filepath.Join(conf, "main.cf"))
		}
		if err := os.WriteFile(filepath.Join(conf, "main.cf"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, ok := postconf(diag, "unknown", "mynetworks"); !ok || !strings.Contains(out, "127.0.0.0/8") {
			t.Errorf("MAIL_CONFIG=%q: postconf with main.cf = %q, %v; want its output", env, out, ok)
		}
	}
}
