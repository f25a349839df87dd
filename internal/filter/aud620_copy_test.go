package filter

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// E-MailRelay separates copy:'s options with ';' (copy:nodelete;hardlink)
// and takes their one-letter forms and no_delete too; relaykeeper's own
// comma form (copy:nodelete,hardlink) keeps working inside a chain.
func TestAud620CopyOptions(t *testing.T) {
	for _, spec := range []string{"copy:nodelete;hardlink", "copy:n;h", "copy:no_delete;hardlink", "copy:nodelete,hardlink"} {
		dir, content, env := mailboxSpool(t)
		f, err := ParseChain([]string{spec}, Server, 0)
		if err != nil {
			t.Errorf("ParseChain(%q): %v", spec, err)
			continue
		}
		if _, ok := f.(*copyFilter); !ok {
			t.Errorf("ParseChain(%q) = %T; want one copy filter", spec, f)
			continue
		}
		if r := f.Run(context.Background(), content, env); r.Outcome != OK {
			t.Errorf("%s: %v; want ok (nodelete)", spec, r)
		}
		a, errA := os.Stat(content)
		b, errB := os.Stat(filepath.Join(dir, "alice", "ID1.content"))
		if errA != nil || errB != nil || !os.SameFile(a, b) {
			t.Errorf("%s: the original and alice's copy are not one hard-linked file (%v, %v)", spec, errA, errB)
		}
	}
	for _, spec := range []string{"copy:p", "copy:nodelete;pop", "copy:bogus"} {
		if f, err := Parse(spec, Server, 0); err == nil {
			t.Errorf("Parse(%q) = %v; want an error", spec, f)
		}
	}
}

// mailboxSpool makes a spool with the mailbox directory alice and a new
// message, as a server filter sees it, and returns the three paths.
func mailboxSpool(t *testing.T) (dir, content, env string) {
	t.Helper()
	dir = t.TempDir()
	os.Mkdir(filepath.Join(dir, "alice"), 0o750)
	content = filepath.Join(dir, "ID1.content")
	env = filepath.Join(dir, "ID1.envelope.new")
	os.WriteFile(content, []byte("Subject: x\r\n\r\nhi\r\n"), 0o640)
	os.WriteFile(env, []byte("X-MailRelay-Format: #2821.8\r\nX-MailRelay-End: 1\r\n"), 0o640)
	return dir, content, env
}
