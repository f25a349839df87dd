package filter

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestCopy(t *testing.T) {
	for _, tc := range []struct {
		spec string
		want Outcome
	}{{"copy:", Abandon}, {"copy:nodelete", OK}, {"copy:hardlink", Abandon}} {
		dir := t.TempDir()
		for _, box := range []string{"alice", "bob", "postmaster", ".quarantine"} {
			os.Mkdir(filepath.Join(dir, box), 0o750)
		}
		content := filepath.Join(dir, "ID1.content")
		env := filepath.Join(dir, "ID1.envelope.new")
		os.WriteFile(content, []byte("Subject: x\r\n\r\nhi\r\n"), 0o640)
		os.WriteFile(env, []byte("X-MailRelay-Format: #2821.8\r\nX-MailRelay-End: 1\r\n"), 0o640)
		f, err := Parse(tc.spec, Server, 0)
		if err != nil {
			t.Fatal(err)
		}
		if r := f.Run(context.Background(), content, env); r.Outcome != tc.want {
			t.Errorf("%s: %+v; want %v", tc.spec, r, tc.want)
		}
		for _, box := range []string{"alice", "bob"} {
			b, err := os.ReadFile(filepath.Join(dir, box, "ID1.content"))
			if err != nil || string(b) != "Subject: x\r\n\r\nhi\r\n" {
				t.Errorf("%s: %s's copy = %q, %v", tc.spec, box, b, err)
			}
			if _, err := os.Stat(filepath.Join(dir, box, "ID1.envelope")); err != nil {
				t.Errorf("%s: %s has no committed envelope: %v", tc.spec, box, err)
			}
		}
		for _, box := range []string{"postmaster", ".quarantine"} {
			if _, err := os.Stat(filepath.Join(dir, box, "ID1.content")); err == nil {
				t.Errorf("%s: a copy went into %s", tc.spec, box)
			}
		}
	}
	if _, err := Parse("copy:pop", Server, 0); err == nil {
		t.Error("copy:pop accepted; it is not supported")
	}
}
