package filter

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParse(t *testing.T) {
	prog := script(t, "addsig", "exit 0")
	tests := []struct {
		spec string
		want string // the concrete type, by name
	}{
		{prog, "*filter.program"},
		{prog + " --exit-code", "*filter.program"},
		{"file:" + prog, "*filter.program"},
		{"sh -c true", "*filter.program"},
		{"exit:0", "*filter.exitFilter"},
		{"exit:103", "*filter.exitFilter"},
		{"msgid:", "*filter.msgID"},
		{"msgid:example.com", "*filter.msgID"},
		{"spam:localhost:783", "*filter.spamd"},
		{"spam-edit:127.0.0.1:783", "*filter.spamd"},
		{"spam:/run/spamd.sock", "*filter.spamd"},
		{"net:localhost:99", "*filter.netFilter"},
		{"net:[::1]:99", "*filter.netFilter"},
		{"pipe:" + prog + " -f ${sender} -- ${recipient}", "*filter.pipe"},
	}
	for _, tt := range tests {
		f, err := Parse(tt.spec, Server, 0)
		if err != nil {
			t.Errorf("Parse(%q): %v", tt.spec, err)
			continue
		}
		if got := fmt.Sprintf("%T", f); got != tt.want {
			t.Errorf("Parse(%q) = %s; want %s", tt.spec, got, tt.want)
		}
		if f.String() != tt.spec {
			t.Errorf("Parse(%q).String() = %q", tt.spec, f.String())
		}
	}
	for _, spec := range []string{
		"", "  ", "exit:", "exit:-1", "exit:256", "exit:x",
		"net:", "net:localhost", "spam:783", "spam-edit:",
		"msgid:bad domain", "copy:pop", "deliver:", "split:", "mx:",
		"/nonexistent/filter", filepath.Dir(prog), "no-such-program-on-path",
		"pipe:", "pipe:" + prog + " ${queue_id}",
	} {
		if f, err := Parse(spec, Server, 0); err == nil {
			t.Errorf("Parse(%q) = %v; want an error", spec, f)
		}
	}
	if _, err := Parse("exit:0", Side(7), 0); err == nil {
		t.Errorf("Parse with a bad side: no error")
	}
}

func TestExitCodes(t *testing.T) {
	rejected := func(code int) Result {
		return Result{Outcome: Reject, Code: 550, Enhanced: "5.7.1", Text: "rejected", Reason: "exit " + strconv.Itoa(code)}
	}
	tests := []struct {
		code           int
		server, client Result
	}{
		{0, Result{}, Result{}},
		{1, rejected(1), rejected(1)},
		{50, rejected(50), rejected(50)},
		{99, rejected(99), rejected(99)},
		{100, Result{Outcome: Abandon}, Result{Outcome: Abandon}},
		{101, Result{}, Result{}},
		{102, Result{Outcome: Abandon, Rescan: true}, Result{StopScanning: true}},
		{103, Result{Rescan: true}, Result{}},
		{104, withFlags(rejected(104), true, false), Result{Outcome: Abandon, StopScanning: true}},
		{105, rejected(105), withFlags(rejected(105), false, true)},
		{106, rejected(106), rejected(106)},
		{115, rejected(115), rejected(115)},
		{127, rejected(127), rejected(127)},
		{255, rejected(255), rejected(255)},
	}
	for _, tt := range tests {
		for _, side := range []Side{Server, Client} {
			want := tt.server
			if side == Client {
				want = tt.client
			}
			spec := "exit:" + strconv.Itoa(tt.code)
			got := mustParse(t, spec, side, 0).Run(context.Background(), "/nonexistent.content", "/nonexistent.envelope")
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s on the %s side (-want +got):\n%s", spec, side, diff)
			}
		}
	}
}

func withFlags(r Result, rescan, stop bool) Result {
	r.Rescan, r.StopScanning = rescan, stop
	return r
}

func TestProgramOutput(t *testing.T) {
	tests := []struct {
		name string
		body string
		side Side
		want Result
	}{
		{"ok", "echo whatever; exit 0", Server, Result{}},
		{"ok-garbage", `printf '\001\377<<no\n[[x'; exit 0`, Server, Result{}},
		{"plain-reject", "exit 1", Server,
			Result{Outcome: Reject, Code: 550, Enhanced: "5.7.1", Text: "rejected", Reason: "exit 1"}},
		{"code-and-enhanced", `echo "some noise"; echo "<<550 5.7.1 no way>>"; exit 1`, Server,
			Result{Outcome: Reject, Code: 550, Enhanced: "5.7.1", Text: "no way", Reason: "exit 1: 550 5.7.1 no way"}},
		{"brackets-and-reason", `echo "[[go away]]"; echo "<<spam score 99>>"; exit 2`, Server,
			Result{Outcome: Reject, Code: 550, Enhanced: "5.7.1", Text: "go away", Reason: "spam score 99"}},
		{"code-only", `printf '<<553 bad sender>>\r\n'; exit 3`, Client,
			Result{Outcome: Reject, Code: 553, Enhanced: "5.7.1", Text: "bad sender", Reason: "exit 3: 553 bad sender"}},
		{"temporary", `echo "<<452 4.3.1 try later>>"; exit 1`, Server,
			Result{Outcome: TempFail, Code: 452, Enhanced: "4.3.1", Text: "try later", Reason: "exit 1: 452 4.3.1 try later"}},
		{"mismatched-enhanced", `echo "<<550 4.7.1 odd>>"; exit 1`, Server,
			Result{Outcome: Reject, Code: 550, Enhanced: "5.7.1", Text: "4.7.1 odd", Reason: "exit 1: 550 4.7.1 odd"}},
		{"not-a-code", `echo "<<250 fine>>"; exit 1`, Server,
			Result{Outcome: Reject, Code: 550, Enhanced: "5.7.1", Text: "250 fine", Reason: "exit 1: 250 fine"}},
		{"empty-text", `echo "<<>>"; exit 1`, Server,
			Result{Outcome: Reject, Code: 550, Enhanced: "5.7.1", Text: "rejected", Reason: "exit 1"}},
		{"garbage", `printf '\001\002\377 junk\n<<bad\001\377text>> trailing\n'; head -c 1000 /dev/zero; exit 9`, Server,
			Result{Outcome: Reject, Code: 550, Enhanced: "5.7.1", Text: "bad??text", Reason: "exit 9: bad??text"}},
		{"rescan-with-text", `echo "<<554 5.7.0 refused>>"; exit 104`, Server,
			Result{Outcome: Reject, Code: 554, Enhanced: "5.7.0", Text: "refused", Reason: "exit 104: 554 5.7.0 refused", Rescan: true}},
		{"abandon-ignores-text", `echo "<<550 ignored>>"; exit 100`, Server, Result{Outcome: Abandon}},
		{"stop-scanning", `exit 102`, Client, Result{StopScanning: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParse(t, script(t, tt.name+".sh", tt.body), tt.side, 10*time.Second)
			c, e := message(t, testContent)
			got := f.Run(context.Background(), c, e)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Run (-want +got):\n%s", diff)
			}
		})
	}
}

// TestProgramInvocation checks what a program gets: the content and
// envelope paths as its only arguments, E-MailRelay's reduced environment,
// and an empty standard input.
func TestProgramInvocation(t *testing.T) {
	c, e := message(t, testContent)
	out := filepath.Join(t.TempDir(), "out")
	p := script(t, "args.sh", `{ echo "$#"; echo "$1"; echo "$2"; env | grep -v '^PWD=\|^SHLVL=\|^_=' | sort; cat; echo end; } > `+out)
	if r := mustParse(t, p, Server, 10*time.Second).Run(context.Background(), c, e); r.Outcome != OK {
		t.Fatalf("Run = %v; want ok", r)
	}
	got := strings.Split(readFile(t, out), "\n")
	// env prints IFS's newline, which sort puts first.
	want := []string{"2", c, e, "", "IFS= \t", "PATH=" + os.Getenv("PATH"), "end", ""}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("program saw (-want +got):\n%s", diff)
	}
}

func TestProgramFailuresAreTemporary(t *testing.T) {
	c, e := message(t, testContent)

	t.Run("hang", func(t *testing.T) {
		pidFile := filepath.Join(t.TempDir(), "child.pid")
		p := script(t, "hang.sh", `sleep 60 & echo $! > `+pidFile+`; wait`)
		start := time.Now()
		r := mustParse(t, p, Server, 300*time.Millisecond).Run(context.Background(), c, e)
		if elapsed := time.Since(start); elapsed > 5*time.Second {
			t.Errorf("Run took %v; want about the 300ms timeout", elapsed)
		}
		if r.Outcome != TempFail || r.Code != 451 || r.Enhanced != "4.3.0" || !strings.Contains(r.Reason, "timed out") {
			t.Errorf("Run = %v; want tempfail 451 4.3.0 ... timed out", r)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(readFile(t, pidFile)))
		if err != nil {
			t.Fatal(err)
		}
		waitGone(t, pid) // the script's child died with its process group
	})

	t.Run("crash", func(t *testing.T) {
		p := script(t, "crash.sh", `echo "<<550 never seen>>"; kill -SEGV $$`)
		r := mustParse(t, p, Client, 10*time.Second).Run(context.Background(), c, e)
		if r.Outcome != TempFail || r.Code != 451 || !strings.Contains(r.Reason, "signal") {
			t.Errorf("Run = %v; want tempfail ... signal", r)
		}
	})

	t.Run("vanished", func(t *testing.T) {
		p := script(t, "gone.sh", `exit 0`)
		f := mustParse(t, p, Server, 10*time.Second)
		os.Remove(p)
		if r := f.Run(context.Background(), c, e); r.Outcome != TempFail || r.Code != 451 {
			t.Errorf("Run of a removed program = %v; want tempfail 451", r)
		}
	})

	t.Run("bad-interpreter", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "bad.sh")
		os.WriteFile(p, []byte("#!/nonexistent/interpreter\nexit 0\n"), 0o755)
		if r := mustParse(t, p, Server, 10*time.Second).Run(context.Background(), c, e); r.Outcome != TempFail {
			t.Errorf("Run with a missing interpreter = %v; want tempfail", r)
		}
	})

	t.Run("canceled", func(t *testing.T) {
		p := script(t, "slow.sh", `sleep 60`)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		if r := mustParse(t, p, Server, time.Minute).Run(ctx, c, e); r.Outcome != TempFail {
			t.Errorf("Run with an ending context = %v; want tempfail", r)
		}
	})
}

// TestAddsig is the E-MailRelay guide's "--filter /usr/local/bin/addsig":
// a filter that edits the content in place, appending, or rewriting it
// through a temporary file and mv as the guide's spamassassin script does.
func TestAddsig(t *testing.T) {
	for name, body := range map[string]string{
		"append": `printf -- '-- \r\nsent through relaykeeper\r\n' >> "$1"`,
		"mv":     `{ cat "$1"; printf -- '-- \r\nsent through relaykeeper\r\n'; } > "$1.tmp" && mv "$1.tmp" "$1"; exit 0`,
	} {
		t.Run(name, func(t *testing.T) {
			c, e := message(t, testContent)
			f := mustParse(t, script(t, "addsig", body), Server, 10*time.Second)
			if r := f.Run(context.Background(), c, e); r.Outcome != OK {
				t.Fatalf("Run = %v; want ok", r)
			}
			if got, want := readFile(t, c), testContent+"-- \r\nsent through relaykeeper\r\n"; got != want {
				t.Errorf("content = %q; want %q", got, want)
			}
		})
	}
}

// TestSpamAssassinExitCode is the guide's
// --filter "/usr/bin/spamassassin --exit-code", with the real program, and
// its pipe: form. SpamAssassin checks every file named on its command line,
// so it is given the content file alone (the envelope scores as spam on its
// own): the guide's form refuses spam and passes clean mail.
func TestSpamAssassinExitCode(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping spamassassin in -short mode")
	}
	sa := ensureSpamAssassin(t, "spamassassin")
	ctx := context.Background()

	guide := mustParse(t, sa+" --exit-code", Server, time.Minute)
	c, e := message(t, gtube)
	if r := guide.Run(ctx, c, e); r.Outcome != Reject || r.Code != 550 {
		t.Errorf("spamassassin --exit-code on GTUBE = %v; want reject 550", r)
	}
	c, e = message(t, testContent)
	if r := guide.Run(ctx, c, e); r.Outcome != OK {
		t.Errorf("spamassassin --exit-code on a clean message = %v; want ok", r)
	}

	piped := mustParse(t, "pipe:"+sa+" --exit-code", Server, time.Minute)
	c, e = message(t, gtube)
	if r := piped.Run(ctx, c, e); r.Outcome != Reject || r.Code != 550 {
		t.Errorf("pipe:spamassassin --exit-code on GTUBE = %v; want reject 550", r)
	}
	if got := readFile(t, c); got != gtube {
		t.Errorf("pipe:spamassassin --exit-code changed rejected content to %q", got)
	}
	c, e = message(t, testContent)
	if r := piped.Run(ctx, c, e); r.Outcome != OK {
		t.Errorf("pipe:spamassassin --exit-code on a clean message = %v; want ok", r)
	}
	if got := readFile(t, c); !strings.Contains(got, "\r\nX-Spam-Status: No") || !strings.HasSuffix(got, "Hello Bob.\r\n") {
		t.Errorf("pipe:spamassassin --exit-code content = %q; want X-Spam headers added", got)
	}
}

func TestChain(t *testing.T) {
	dir := t.TempDir()
	ran := func(name string) string { return filepath.Join(dir, name) }
	addsig := script(t, "addsig", `printf 'sig\r\n' >> "$1"`)
	refuse := script(t, "refuse", `touch `+ran("refuse")+`; echo "<<550 5.7.1 no way>>"; exit 1`)
	never := script(t, "never", `touch `+ran("never"))

	c, e := message(t, testContent)
	var fs []Filter
	for _, spec := range []string{addsig, "msgid:example.com", "exit:103", refuse, never} {
		fs = append(fs, mustParse(t, spec, Server, 10*time.Second))
	}
	ch := Chain(fs...)
	r := ch.Run(context.Background(), c, e)
	want := Result{Outcome: Reject, Code: 550, Enhanced: "5.7.1", Text: "no way", Reason: "exit 1: 550 5.7.1 no way", Rescan: true}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Errorf("chain (-want +got):\n%s", diff)
	}
	if _, err := os.Stat(ran("refuse")); err != nil {
		t.Errorf("the rejecting filter did not run: %v", err)
	}
	if _, err := os.Stat(ran("never")); err == nil {
		t.Errorf("a filter after the rejection ran")
	}
	content := readFile(t, c)
	if !strings.HasSuffix(content, "Hello Bob.\r\nsig\r\n") || !strings.Contains(content, "\r\nMessage-ID: <") {
		t.Errorf("content after the chain = %q; want the signature and a Message-ID", content)
	}
	if s := ch.String(); !strings.Contains(s, "msgid:example.com, exit:103") {
		t.Errorf("chain String() = %q", s)
	}

	// Flags accumulate over a chain that passes; an empty chain passes.
	client := Chain(mustParse(t, "exit:102", Client, 0), mustParse(t, "exit:0", Client, 0))
	if r := client.Run(context.Background(), c, e); r != (Result{StopScanning: true}) {
		t.Errorf("chain exit:102, exit:0 on the client side = %v; want ok +stop", r)
	}
	if r := Chain().Run(context.Background(), c, e); r != (Result{}) {
		t.Errorf("empty chain = %v; want ok", r)
	}
}

func TestResultString(t *testing.T) {
	r := Result{Outcome: Reject, Code: 550, Enhanced: "5.7.1", Text: "no way", Reason: "exit 1", Rescan: true}
	if got, want := r.String(), "reject 550 5.7.1 no way (exit 1) +rescan"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	if got := (Result{}).String(); got != "ok" {
		t.Errorf("String() = %q; want ok", got)
	}
}

func TestParseChain(t *testing.T) {
	if f, err := ParseChain(nil, Server, 0); f != nil || err != nil {
		t.Errorf("ParseChain(nil) = %v, %v; want nil, nil", f, err)
	}
	if f, err := ParseChain([]string{"exit:0"}, Server, 0); err != nil {
		t.Errorf("ParseChain(exit:0) = %v", err)
	} else if _, ok := f.(*chain); ok {
		t.Errorf("ParseChain of one filter = a chain; want the filter itself")
	}
	if f, err := ParseChain([]string{"exit:0", "exit:1"}, Server, 0); err != nil {
		t.Errorf("ParseChain(two) = %v", err)
	} else if _, ok := f.(*chain); !ok {
		t.Errorf("ParseChain of two filters = %T; want a chain", f)
	}
	if _, err := ParseChain([]string{"exit:0", "exit:999"}, Server, 0); err == nil {
		t.Error("ParseChain(exit:999) = nil error; want one")
	}
}

func TestJoin(t *testing.T) {
	f, err := Parse("exit:0", Server, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := Join(nil, nil); got != nil {
		t.Errorf("Join(nil, nil) = %v; want nil", got)
	}
	if got := Join(nil, f, nil); got != f {
		t.Errorf("Join(nil, f, nil) = %v; want f itself", got)
	}
	if got, ok := Join(f, nil, f).(*chain); !ok || len(got.filters) != 2 {
		t.Errorf("Join(f, nil, f) = %v; want a chain of two", got)
	}
}
