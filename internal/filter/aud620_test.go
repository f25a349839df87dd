package filter

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// E-MailRelay's FilterFactory reads a --filter (or --client-filter) with a
// comma in it as a chain: "--filter=msgid:,/usr/local/bin/addsig" runs
// msgid: and then addsig. Each piece is one filter specification.
func TestAud620CommaSeparatedChain(t *testing.T) {
	addsig := script(t, "addsig", `printf 'sig\r\n' >> "$1"`)
	c, e := message(t, testContent)
	f, err := ParseChain([]string{"exit:103," + addsig}, Server, 10*time.Second)
	if err != nil {
		t.Fatalf("ParseChain(exit:103,addsig): %v", err)
	}
	if _, ok := f.(*chain); !ok {
		t.Fatalf("ParseChain(exit:103,addsig) = %T; want a chain", f)
	}
	if r := f.Run(context.Background(), c, e); r.Outcome != OK || !r.Rescan {
		t.Errorf("exit:103,addsig = %v; want ok +rescan", r)
	}
	if got := readFile(t, c); !strings.HasSuffix(got, "Hello Bob.\r\nsig\r\n") {
		t.Errorf("content after exit:103,addsig = %q; want the signature", got)
	}

	// The first filter that does not pass ends the chain; empty pieces
	// (a trailing comma) are no filters, as in E-MailRelay.
	f, err = ParseChain([]string{"exit:0, exit:1,", "exit:0"}, Client, 0)
	if err != nil {
		t.Fatalf("ParseChain(exit:0, exit:1,): %v", err)
	}
	if ch, ok := f.(*chain); !ok || len(ch.filters) != 3 {
		t.Fatalf("ParseChain(exit:0, exit:1, + exit:0) = %v; want a chain of three", f)
	}
	if r := f.Run(context.Background(), c, e); r.Outcome != Reject {
		t.Errorf("exit:0,exit:1 = %v; want reject", r)
	}
	for _, bad := range []string{",", "exit:0,exit:999", "exit:0,/nonexistent/filter"} {
		if f, err := ParseChain([]string{bad}, Server, 0); err == nil {
			t.Errorf("ParseChain(%q) = %v; want an error", bad, f)
		}
	}
}

// pipe: is relaykeeper's own (E-MailRelay has no such filter) and passes
// its words to the program as Postfix's pipe(8) does, commas included
// (reformime -s 1.2, sort -t,): it takes the rest of the value, so that a
// configuration written before chains were read stays one filter. A chain
// puts pipe: last.
func TestAud620PipeKeepsItsCommas(t *testing.T) {
	argsFile := filepath.Join(t.TempDir(), "args")
	prog := script(t, "pipefilter", `printf '%s\n' "$@" > `+argsFile+`; cat > /dev/null`)
	f, err := ParseChain([]string{"exit:0,pipe:" + prog + " -o a,b -- ${recipient}"}, Server, 10*time.Second)
	if err != nil {
		t.Fatalf("ParseChain: %v", err)
	}
	ch, ok := f.(*chain)
	if !ok || len(ch.filters) != 2 {
		t.Fatalf("ParseChain(exit:0,pipe:... -o a,b ...) = %v; want exit:0 and one pipe:", f)
	}
	c, e := message(t, testContent)
	if r := f.Run(context.Background(), c, e); r.Outcome != OK {
		t.Fatalf("Run = %v; want ok", r)
	}
	if got, want := readFile(t, argsFile), "-o\na,b\n--\nbob@example.net\ncarol@example.org\n"; got != want {
		t.Errorf("pipe: program's arguments = %q; want %q", got, want)
	}
}
