package filter

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// A program filter's arguments may hold commas (spamc -d host1,host2, a
// header list): before --filter values were read as E-MailRelay chains
// such a filter was one program, and a configuration that worked then
// must not now fail to start ("host2" is no program) or run a piece of
// the argument list. A comma still starts a new filter when what follows
// is one (a scheme such as exit: or a program's path).
func TestRev20aProgramArgumentCommas(t *testing.T) {
	argsFile := filepath.Join(t.TempDir(), "args")
	prog := script(t, "argfilter", `printf '%s\n' "$@" > `+argsFile)
	f, err := ParseChain([]string{prog + " -d host1,host2 --fields=From,To"}, Server, 10*time.Second)
	if err != nil {
		t.Fatalf("ParseChain(program with commas in its arguments): %v", err)
	}
	if _, ok := f.(*program); !ok {
		t.Fatalf("ParseChain(program with commas in its arguments) = %T %v; want one program", f, f)
	}
	c, e := message(t, testContent)
	if r := f.Run(context.Background(), c, e); r.Outcome != OK {
		t.Fatalf("Run = %v; want ok", r)
	}
	if got, want := readFile(t, argsFile), "-d\nhost1,host2\n--fields=From,To\n"+c+"\n"+e+"\n"; got != want {
		t.Errorf("program's arguments = %q; want %q", got, want)
	}

	// What follows a comma that is a filter of its own still is one.
	for _, spec := range []string{prog + " -d a,exit:1", prog + " -v," + prog, "exit:0," + prog + " -d a,b"} {
		f, err := ParseChain([]string{spec}, Server, 10*time.Second)
		if err != nil {
			t.Fatalf("ParseChain(%q): %v", spec, err)
		}
		if ch, ok := f.(*chain); !ok || len(ch.filters) != 2 {
			t.Errorf("ParseChain(%q) = %v; want a chain of two", spec, f)
		}
	}
}
