package filter

import (
	"context"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPipe(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		want    Result
		content string // want, if not the original
	}{
		{"checker", `cat > /dev/null`, Result{}, ""},
		{"identity", `cat`, Result{Reason: "pipe: content rewritten"}, ""},
		{"add-header-lf", `printf 'X-Filtered: yes\n'; tr -d '\r'`, Result{Reason: "pipe: content rewritten"},
			"X-Filtered: yes\r\n" + testContent},
		{"not-a-message", `cat > /dev/null; echo looks fine to me`,
			Result{Outcome: TempFail, Code: 451, Enhanced: "4.3.0", Text: "filter failed, try again later",
				Reason: `pipe: exit 0 with output that is not a whole message: "looks fine to me"`}, ""},
		{"cut-short", `head -c 100`,
			Result{Outcome: TempFail, Code: 451, Enhanced: "4.3.0", Text: "filter failed, try again later",
				Reason: `pipe: exit 0 with output that is not a whole message: "Received: from client.example by relay.example; Sun, 22 Nov 2026 03:00:00 +0000"`}, ""},
		{"tempfail", `exit 75`,
			Result{Outcome: TempFail, Code: 451, Enhanced: "4.3.0", Text: "temporary failure", Reason: "pipe: exit 75 (temporary failure): temporary failure"}, ""},
		{"oserr", `echo "out of memory" >&2; exit 71`,
			Result{Outcome: TempFail, Code: 451, Enhanced: "4.3.0", Text: "out of memory", Reason: "pipe: exit 71 (system resource problem): out of memory"}, ""},
		{"unavailable", `cat >/dev/null; echo Message content rejected; exit 69`,
			Result{Outcome: Reject, Code: 550, Enhanced: "5.3.0", Text: "Message content rejected", Reason: "pipe: exit 69 (service unavailable): Message content rejected"}, ""},
		{"nouser", `exit 67`,
			Result{Outcome: Reject, Code: 550, Enhanced: "5.1.1", Text: "user unknown", Reason: "pipe: exit 67 (user unknown): user unknown"}, ""},
		{"unknown", `exit 1`,
			Result{Outcome: Reject, Code: 550, Enhanced: "5.3.0", Text: "unknown mail system error 1", Reason: "pipe: exit 1 (unknown mail system error 1): unknown mail system error 1"}, ""},
		{"message-on-stdout", `cat; exit 5`,
			Result{Outcome: Reject, Code: 550, Enhanced: "5.3.0", Text: "unknown mail system error 5", Reason: "pipe: exit 5 (unknown mail system error 5): unknown mail system error 5"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := mustParse(t, "pipe:"+script(t, tt.name, tt.body), Server, 10*time.Second)
			c, e := message(t, testContent)
			got := f.Run(context.Background(), c, e)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Run (-want +got):\n%s", diff)
			}
			want := tt.content
			if want == "" {
				want = testContent
			}
			if got := readFile(t, c); got != want {
				t.Errorf("content = %q; want %q", got, want)
			}
		})
	}
}

// TestPipeArguments checks Postfix's ${sender} and ${recipient} and that
// the message arrives on standard input.
func TestPipeArguments(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	p := script(t, "args", `for a; do echo "[$a]"; done > `+out+`; wc -c >> `+out)
	f := mustParse(t, "pipe:"+p+" -f ${sender} -- ${recipient} x${recipient}x", Client, 10*time.Second)
	c, e := message(t, testContent)
	if r := f.Run(context.Background(), c, e); r.Outcome != OK {
		t.Fatalf("Run = %v; want ok", r)
	}
	got := strings.Fields(readFile(t, out))
	want := []string{"[-f]", "[alice@example.com]", "[--]", "[bob@example.net]", "[carol@example.org]",
		"[xbob@example.netx]", "[xcarol@example.orgx]", strconv.Itoa(len(testContent))}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("arguments and input size (-want +got):\n%s", diff)
	}

	// Without the envelope the macros cannot be expanded.
	if r := f.Run(context.Background(), c, e+".missing"); r.Outcome != TempFail {
		t.Errorf("Run without an envelope = %v; want tempfail", r)
	}
}

func TestPipeTimeout(t *testing.T) {
	f := mustParse(t, "pipe:"+script(t, "slow", `sleep 30`), Server, 200*time.Millisecond)
	c, e := message(t, testContent)
	if r := f.Run(context.Background(), c, e); r.Outcome != TempFail || !strings.Contains(r.Reason, "timed out") {
		t.Errorf("Run = %v; want tempfail, timed out", r)
	}
}
