package harness

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestMergeMainCF(t *testing.T) {
	base := []string{"a = 1", "b = 2", "c=3"}
	tests := []struct {
		extra, want []string
	}{
		{nil, base},
		{[]string{"b = 20"}, []string{"a = 1", "b = 20", "c=3"}},
		{[]string{"c = 30", "d = 4"}, []string{"a = 1", "b = 2", "c = 30", "d = 4"}},
		{[]string{"a =", "a = 10"}, []string{"a = 10", "b = 2", "c=3"}},
		{[]string{"d = 4", "d = 40"}, []string{"a = 1", "b = 2", "c=3", "d = 40"}},
		// Comments, blank and continuation lines are kept as they come.
		{[]string{"# b = 20", "", "e = x,", "  b = 20"}, []string{"a = 1", "b = 2", "c=3", "# b = 20", "", "e = x,", "  b = 20"}},
	}
	for _, tc := range tests {
		got := mergeMainCF(base, tc.extra)
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("mergeMainCF(%q) (-want +got):\n%s", tc.extra, diff)
		}
	}
	if base[1] != "b = 2" {
		t.Errorf("mergeMainCF changed its base: %q", base)
	}
}

// TestPostfixMainCFOverride: MainCF lines take the place of the harness's
// own, so that no Postfix program warns of a parameter set twice (such
// warnings once filled the postlog socket on a busy machine and hung the
// instance), and the values in force are the test's.
func TestPostfixMainCFOverride(t *testing.T) {
	t.Parallel()
	sink := StartSink(t, SinkOptions{})
	pf := StartPostfix(t, PostfixOptions{Relayhost: RelayhostFor(sink.Addr()), MainCF: []string{
		"mynetworks = 127.0.0.1/32",
		"smtpd_relay_restrictions = permit_mynetworks, reject",
		"smtp_connect_timeout = 3s",
		"smtpd_banner = $myhostname ESMTP override",
	}})
	postconf := need(t, "postconf")
	for name, want := range map[string]string{
		"mynetworks":               "127.0.0.1/32",
		"smtpd_relay_restrictions": "permit_mynetworks, reject",
		"smtp_connect_timeout":     "3s",
		"smtpd_banner":             "$myhostname ESMTP override",
		"relayhost":                RelayhostFor(sink.Addr()),
	} {
		out, _, err := runTimeout(30*time.Second, nil, postconf, "-c", pf.ConfigDir(), "-h", name)
		if got := strings.TrimSpace(out); err != nil || got != want {
			t.Errorf("postconf -h %s = %q, %v; want %q", name, got, err, want)
		}
	}
	if out, code := Swaks(t, "--server", pf.Addr(), "--from", "a@example.org", "--to", "b@example.net"); code != 0 {
		t.Fatalf("swaks to postfix exit code = %d; want 0\n%s", code, out)
	}
	pf.WaitLog(t, "status=sent", 15*time.Second)
	if log := pf.MailLog(); strings.Contains(log, "overriding earlier entry") {
		t.Errorf("Postfix warned of a parameter set twice:\n%s", log)
	}
}

// recordTB notes what a helper asked of its test instead of doing it.
type recordTB struct {
	testing.TB
	fatal, skip string
}

func (r *recordTB) Helper()                        {}
func (r *recordTB) Fatalf(format string, a ...any) { r.fatal = fmt.Sprintf(format, a...) }
func (r *recordTB) Skipf(format string, a ...any)  { r.skip = fmt.Sprintf(format, a...) }

func TestMissing(t *testing.T) {
	for _, tc := range []struct {
		ci          string
		fails, skip bool
	}{{"true", true, false}, {"", false, true}, {"false", false, true}} {
		t.Setenv("CI", tc.ci)
		r := &recordTB{TB: t}
		Missing(r, "%s is not installed", "smtp-sink")
		if (r.fatal != "") != tc.fails || (r.skip != "") != tc.skip || !strings.Contains(r.fatal+r.skip, "smtp-sink is not installed") {
			t.Errorf("CI=%q: Missing failed with %q, skipped with %q; want fails %v, skips %v", tc.ci, r.fatal, r.skip, tc.fails, tc.skip)
		}
	}
}
