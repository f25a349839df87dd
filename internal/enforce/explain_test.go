package enforce

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	p, rerr, ferr := OpenPolicy("", "")
	if rerr != nil || ferr != nil {
		t.Fatalf("OpenPolicy(built in) = %v, %v", rerr, ferr)
	}
	var out bytes.Buffer
	if err := Explain(&out, p, "451 4.3.0 Something new", ""); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "report (no rule matched)\nclient hears: 451 4.3.0 Something new (unchanged)\n"; got != want {
		t.Errorf("Explain = %q; want %q", got, want)
	}

	out.Reset()
	var bad []int
	in := "# comment\n\n250 2.0.0 OK\nnot a reply\n"
	if err := ExplainEach(&out, strings.NewReader(in), p, "", func(n int, err error) { bad = append(bad, n) }); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "reply: 250 2.0.0 OK\nnone\nclient hears: 250 2.0.0 OK (unchanged)\n\nreply: not a reply\n"; got != want {
		t.Errorf("ExplainEach output = %q; want %q", got, want)
	}
	if len(bad) != 1 || bad[0] != 4 {
		t.Errorf("ExplainEach bad lines = %v; want [4]", bad)
	}
}

func TestOpenPolicyNamesTheFile(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "missing")
	if _, rerr, ferr := OpenPolicy(missing, ""); rerr == nil || ferr != nil {
		t.Errorf("OpenPolicy(missing rules) = %v, %v; want a rules error", rerr, ferr)
	}
	if _, rerr, ferr := OpenPolicy("", missing); rerr != nil || ferr == nil {
		t.Errorf("OpenPolicy(missing filter) = %v, %v; want a filter error", rerr, ferr)
	}
}

func TestFilesPrepare(t *testing.T) {
	spool := t.TempDir()
	own := filepath.Join(t.TempDir(), "welcome")
	f, err := Files{Welcomelist: own}.Prepare(spool)
	if err != nil {
		t.Fatal(err)
	}
	want := Files{SenderAccess: filepath.Join(spool, ".enforce", "sender_access"), Welcomelist: own,
		Bans: filepath.Join(spool, ".enforce", "bans")}
	if f != want {
		t.Errorf("Prepare = %+v; want %+v", f, want)
	}
	b, err := os.ReadFile(f.SenderAccess)
	if err != nil || !strings.HasPrefix(string(b), "# Sender domains blocked") {
		t.Errorf("sender access table = %q, %v; want the header", b, err)
	}
	// A table that exists is left as it is.
	os.WriteFile(f.SenderAccess, []byte("example.com REJECT\n"), 0o644)
	if _, err := f.Prepare(spool); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(f.SenderAccess); string(b) != "example.com REJECT\n" {
		t.Errorf("Prepare rewrote an existing table: %q", b)
	}
}

func TestBansByHand(t *testing.T) {
	spool := filepath.Join(t.TempDir(), "spool") // the spool must exist (TestDocs26OpenBansByHandMistypedSpool)
	if err := os.Mkdir(spool, 0o750); err != nil {
		t.Fatal(err)
	}
	b, err := OpenBansByHand(filepath.Join(spool, ".enforce", "bans"))
	if err != nil {
		t.Fatal(err)
	}
	if b.Delay != 0 {
		t.Errorf("OpenBansByHand Delay = %v; want 0", b.Delay)
	}
	var out bytes.Buffer
	if err := WriteBanList(&out, b.List(), true, nil); err != nil || out.String() != "[]\n" {
		t.Errorf("WriteBanList(none, json) = %q, %v; want []", out.String(), err)
	}
	out.Reset()
	if err := WriteBanList(&out, nil, false, nil); err != nil || out.String() != "IP  FROM  UNTIL  REASON\n" {
		t.Errorf("WriteBanList(none) = %q, %v; want the header", out.String(), err)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o644)
	if _, err := OpenBansByHand(filepath.Join(file, "x", "bans")); err == nil {
		t.Errorf("OpenBansByHand(under a file) = %v; want an error", err)
	}
}
