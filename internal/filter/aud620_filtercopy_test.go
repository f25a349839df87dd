package filter

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// The E-MailRelay user guide: "consider using the --pop-by-name option with
// a --filter script that moves messages into the appropriate
// sub-directory. The emailrelay-filter-copy program is designed to be used
// in this way". That program copies each new message into every mailbox
// directory and drops the original (exit 100); here it is the copy:
// filter, wherever the configuration says it is installed, since
// E-MailRelay's program leaves the content in the main directory, where
// relaykeeper's POP3 server does not look.
func TestAud620EmailrelayFilterCopy(t *testing.T) {
	for _, spec := range []string{
		"/usr/lib/emailrelay/emailrelay-filter-copy",
		"/usr/local/libexec/emailrelay/emailrelay-filter-copy",
		"emailrelay-filter-copy",
		`"c:/Program Files/E-MailRelay/emailrelay-filter-copy.exe"`,
	} {
		f, err := ParseChain([]string{spec}, Server, 0)
		if err != nil {
			t.Errorf("ParseChain(%q): %v", spec, err)
			continue
		}
		if f.String() != spec {
			t.Errorf("ParseChain(%q).String() = %q", spec, f.String())
		}
		dir, content, env := mailboxSpool(t)
		if r := f.Run(context.Background(), content, env); r.Outcome != Abandon {
			t.Errorf("%s: %v; want abandon (the original dropped, as the program's exit 100)", spec, r)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "alice", "ID1.content")); err != nil || string(b) != "Subject: x\r\n\r\nhi\r\n" {
			t.Errorf("%s: alice's copy = %q, %v", spec, b, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "alice", "ID1.envelope")); err != nil {
			t.Errorf("%s: alice has no envelope: %v", spec, err)
		}
	}
}
