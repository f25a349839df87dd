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
	script := "#!/bin/sh\necho \"$@\" >> " + ran + "\necho 'mynetworks = 127.0.0.0/8'\n"
	if err := os.WriteFile(filepath.Join(bin, "postconf"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	t.Setenv("MAIL_CONFIG", conf)
	var log bytes.Buffer
	diag := slog.New(slog.NewTextHandler(&log, nil))
	if _, ok := postconf(diag, "unknown", "mynetworks"); ok {
		t.Error("postconf without main.cf: ok")
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("postconf was run without main.cf")
	}
	if !strings.Contains(log.String(), "Postfix has no main.cf") || !strings.Contains(log.String(), filepath.Join(conf, "main.cf")) {
		t.Errorf("warning %q; want one naming %s", log.String(), filepath.Join(conf, "main.cf"))
	}
	if err := os.WriteFile(filepath.Join(conf, "main.cf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, ok := postconf(diag, "unknown", "mynetworks"); !ok || !strings.Contains(out, "127.0.0.0/8") {
		t.Errorf("postconf with main.cf = %q, %v; want its output", out, ok)
	}
}
