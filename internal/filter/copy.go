package filter

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/relaykeeper/relaykeeper/internal/safefile"
)

// copyFilter is E-MailRelay's copy: one copy of the message into every
// mailbox directory of the spool (each sub-directory except postmaster and
// dot directories), for POP users with --pop-by-name; the original is then
// dropped (the client still hears success) unless nodelete is given. With
// hardlink the copies share the content file.
type copyFilter struct {
	spec               string
	nodelete, hardlink bool
}

// copyOption maps the words of copy:'s options, E-MailRelay's long and
// one-letter forms, to their meaning.
var copyOption = map[string]string{
	"nodelete": "nodelete", "n": "nodelete", "no_delete": "nodelete",
	"hardlink": "hardlink", "h": "hardlink",
	"pop": "pop", "p": "pop",
}

// splitCopyOptions cuts copy:'s options at E-MailRelay's ';' and at the
// ',' relaykeeper documented first.
func splitCopyOptions(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ';' || r == ',' })
}

// isCopySpec reports whether spec is a copy: filter's specification.
func isCopySpec(spec string) bool { return strings.HasPrefix(spec, "copy:") }

// copyOptions reports whether s is nothing but copy: options.
func copyOptions(s string) bool {
	for _, o := range splitCopyOptions(s) {
		if _, ok := copyOption[strings.TrimSpace(o)]; !ok {
			return false
		}
	}
	return true
}

func newCopy(spec, arg string) (Filter, error) {
	f := &copyFilter{spec: spec}
	for _, o := range splitCopyOptions(arg) {
		o = strings.TrimSpace(o)
		switch copyOption[o] {
		case "":
			if o != "" {
				return nil, fmt.Errorf("filter: %q: unknown copy: option %q", spec, o)
			}
		case "nodelete":
			f.nodelete = true
		case "hardlink":
			f.hardlink = true
		case "pop":
			return nil, fmt.Errorf("filter: %q: copy:pop (content left in the main spool) is not supported; use copy: or copy:hardlink", spec)
		}
	}
	return f, nil
}

func (f *copyFilter) String() string { return f.spec }

func (f *copyFilter) Run(ctx context.Context, contentPath, envelopePath string) Result {
	dir := filepath.Dir(contentPath)
	id := strings.TrimSuffix(filepath.Base(contentPath), ".content")
	env, err := os.ReadFile(envelopePath)
	if err != nil {
		return tempFail("copy: cannot read the envelope: %v", err)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return tempFail("copy: %v", err)
	}
	copies := 0
	for _, de := range des {
		name := de.Name()
		if !de.IsDir() || strings.HasPrefix(name, ".") || name == "postmaster" {
			continue
		}
		box := filepath.Join(dir, name)
		if err := f.copyInto(box, id, contentPath, env); err != nil {
			return tempFail("copy: %v", err)
		}
		copies++
	}
	if copies == 0 || f.nodelete {
		return Result{Outcome: OK, Reason: fmt.Sprintf("copied to %d mailbox(es)", copies)}
	}
	// The copies are the message now; the original goes.
	return Result{Outcome: Abandon, Reason: fmt.Sprintf("copied to %d mailbox(es)", copies)}
}

// copyInto writes the content, then the envelope in its committed state,
// each through a temporary name, so a POP user never sees half a message.
func (f *copyFilter) copyInto(box, id, contentPath string, env []byte) error {
	content := filepath.Join(box, id+".content")
	if f.hardlink {
		if err := os.Link(contentPath, content); err != nil && !os.IsExist(err) {
			return err
		}
	} else if err := copyFile(contentPath, content); err != nil {
		return err
	}
	return safefile.WriteFile(filepath.Join(box, id+".envelope"), env, 0o640)
}

// copyFile copies src to dst through a temporary name; the directory is
// fsynced when the envelope follows.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return safefile.Replace(dst, safefile.Options{Perm: 0o640, NoDirSync: true}, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
