package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/relaykeeper/relaykeeper/internal/config"
	"github.com/relaykeeper/relaykeeper/internal/deliver"
	"github.com/relaykeeper/relaykeeper/internal/dkim"
	"github.com/relaykeeper/relaykeeper/internal/enforce"
	"github.com/relaykeeper/relaykeeper/internal/metrics"
	"github.com/relaykeeper/relaykeeper/internal/reload"
	"github.com/relaykeeper/relaykeeper/internal/smtpd"
	"github.com/relaykeeper/relaykeeper/internal/srs"
)

// The seams between the enforcer and its neighbours, each declared by its
// consumer.
var (
	_ deliver.Refusals       = enforcerRefusals{}
	_ deliver.Verdicts       = deliver.EngineVerdicts{}
	_ smtpd.Enforcer         = enforcerProxy{}
	_ enforce.Kicker         = (*deliver.Scheduler)(nil)
	_ enforce.TableReloader  = (*reload.Runner)(nil)
	_ enforce.VerdictCounter = (*metrics.Metrics)(nil)
	_ enforce.Signer         = (*dkim.Signer)(nil)
	_ enforce.Welcomer       = (*enforce.Welcomelist)(nil)
	_ enforce.SRSDecoder     = (*srs.Rewriter)(nil)
)

func enforceCmd(t *testing.T, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	status := runEnforce(args, strings.NewReader(stdin), &out, &errOut)
	return status, out.String(), errOut.String()
}

const (
	enforceUnsolicited = "550-5.7.1 [192.0.2.25      12] Our system has detected that this message is\n" +
		"550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail,\n" +
		"550 5.7.1 this message has been blocked. a1si123 - gsmtp"
	enforceUnsolicitedJoined = "550-5.7.1 [192.0.2.25      12] Our system has detected that this message is " +
		"550-5.7.1 likely unsolicited mail. To reduce the amount of spam sent to Gmail, " +
		"550 5.7.1 this message has been blocked. a1si123 - gsmtp"
)

func TestEnforceTest(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"multi-line", []string{"test", enforceUnsolicited},
			"ban (rule gmail-unsolicited)\nclient hears: " + enforceUnsolicitedJoined + " (unchanged)\n"},
		{"joined, switch after", []string{"test", enforceUnsolicitedJoined, "--host", "gmail-smtp-in.l.google.com"},
			"ban (rule gmail-unsolicited)\nclient hears: " + enforceUnsolicitedJoined + " (unchanged)\n"},
		{"encapsulate", []string{"test", "550-5.7.26 Unauthenticated email from example.com is not accepted due to\n550 5.7.26 domain's DMARC policy. x - gsmtp"},
			"encapsulate (rule gmail-dmarc)\n" +
				"client hears, once the encapsulated copy is sent: 250 2.0.0 Ok: forwarded encapsulated to the recipient (the upstream refused it: 5.7.26 authentication)\n" +
				"client hears, if it cannot be sent: 550-5.7.26 Unauthenticated email from example.com is not accepted due to 550 5.7.26 domain's DMARC policy. x - gsmtp (unchanged)\n"},
		{"temporary spam becomes permanent", []string{"test", "421-4.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain [example.com 30]. 421 4.7.28 Rate limited. x - gsmtp"},
			"block-domain (rule gmail-spf-domain-rate, domain example.com)\n" +
				"client hears: 554 5.7.28 Gmail has detected an unusual rate of unsolicited mail originating from your SPF domain [example.com 30]. Rate limited. x - gsmtp\n"},
		{"log fragment", []string{"test", "host gmail-smtp-in.l.google.com[142.250.27.26] said: 550 5.7.25 [192.0.2.25] The IP address sending this message does not have a PTR record setup (in reply to end of DATA command)"},
			"alert (rule gmail-no-ptr)\nclient hears: 451 4.7.25 [192.0.2.25] The IP address sending this message does not have a PTR record setup\n" +
				"queued mail: kept (deferred), whatever the code says\n"},
		{"accepted", []string{"test", "250 2.0.0 OK  1795310619 x - gsmtp"},
			"none\nclient hears: 250 2.0.0 OK  1795310619 x - gsmtp (unchanged)\n"},
		{"unknown", []string{"test", "451 4.3.0 Something new"},
			"report (no rule matched)\nclient hears: 451 4.3.0 Something new (unchanged)\n"},
	}
	for _, tt := range tests {
		status, out, errOut := enforceCmd(t, "", tt.args...)
		if status != exitOK || errOut != "" {
			t.Errorf("%s: runEnforce = %d, stderr %q; want 0", tt.name, status, errOut)
		}
		if diff := cmp.Diff(tt.want, out); diff != "" {
			t.Errorf("%s: runEnforce(%q) output (-want +got):\n%s", tt.name, tt.args, diff)
		}
	}
}

func TestEnforceTestStdin(t *testing.T) {
	stdin := "# Gmail's replies, one a line\n" +
		enforceUnsolicitedJoined + "\n\n" +
		"452-4.2.2 The recipient's inbox is out of storage space. 452 4.2.2 Please direct the recipient. x - gsmtp\n" +
		"not a reply\n"
	status, out, errOut := enforceCmd(t, stdin, "test", "-")
	want := "reply: " + enforceUnsolicitedJoined + "\n" +
		"ban (rule gmail-unsolicited)\n" +
		"client hears: " + enforceUnsolicitedJoined + " (unchanged)\n" +
		"\n" +
		"reply: 452-4.2.2 The recipient's inbox is out of storage space. 452 4.2.2 Please direct the recipient. x - gsmtp\n" +
		"none (rule gmail-over-quota)\n" +
		"client hears: 452-4.2.2 The recipient's inbox is out of storage space. 452 4.2.2 Please direct the recipient. x - gsmtp (unchanged)\n" +
		"\n" +
		"reply: not a reply\n"
	if diff := cmp.Diff(want, out); diff != "" {
		t.Errorf("enforce test - output (-want +got):\n%s", diff)
	}
	if status != exitFailure || errOut != "relaykeeper enforce test: line 5: enforce: no reply code at the start of \"not a reply\"\n" {
		t.Errorf("enforce test - = %d, stderr %q; want 1 and the bad line", status, errOut)
	}
}

func TestEnforceTestFiles(t *testing.T) {
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.conf")
	filter := filepath.Join(dir, "filter.pcre")
	os.WriteFile(rules, []byte("rule mine\n  action ban\n  host ^mx\\.example\\.net$\n"), 0o644)
	os.WriteFile(filter, []byte("/^550 (.*)/ 554 5.7.1 $1 (rewritten)\n"), 0o644)
	status, out, errOut := enforceCmd(t, "", "test", "--reply-filter", filter, "550 5.7.1 go away")
	if status != exitOK {
		t.Fatalf("status %d, stderr %q", status, errOut)
	}
	if want := "report (no rule matched)\nclient hears: 554 5.7.1 5.7.1 go away (rewritten)\n"; out != want {
		t.Errorf("output %q; want %q", out, want)
	}
	_, out, _ = enforceCmd(t, "", "test", "--rules", rules, "--host", "MX.example.net", "550 5.7.1 go away")
	// A host the relay does not trust: the rule's ban is reported (rep20).
	if want := "ban (rule mine)\nrelay does: report (upstream MX.example.net is not a trusted upstream; not acted on)\nclient hears: 550 5.7.1 go away (unchanged)\n"; out != want {
		t.Errorf("with --host: output %q; want %q", out, want)
	}

	bad := filepath.Join(dir, "bad.conf")
	os.WriteFile(bad, []byte("rule a\n  action explode\nrule b\n  code 9\n"), 0o644)
	status, _, errOut = enforceCmd(t, "", "test", "--rules", bad, "550 x")
	wantErr := "relaykeeper enforce test: --rules:\n" +
		bad + ":2: unknown action \"explode\" (want none, ban, block-domain, encapsulate, pace, alert or report)\n" +
		bad + ":1: rule \"a\" has no action\n" +
		bad + ":4: code \"9\": want three digits, or x for any digit (550, 5xx, 55x)\n" +
		bad + ":3: rule \"b\" has no action\n"
	if status != exitUsage || errOut != wantErr {
		t.Errorf("bad rules: status %d, stderr\n%s; want 2 and\n%s", status, errOut, wantErr)
	}
}

func TestEnforcePrints(t *testing.T) {
	status, out, _ := enforceCmd(t, "", "rules")
	if status != exitOK || out != enforce.DefaultRulesText() {
		t.Errorf("enforce rules = %d, %.60q...; want the built-in rules", status, out)
	}
	status, out, _ = enforceCmd(t, "", "reply-filter")
	if status != exitOK || out != enforce.DefaultReplyFilterText() {
		t.Errorf("enforce reply-filter = %d, %.60q...; want the built-in filter", status, out)
	}
	status, out, _ = enforceCmd(t, "", "--help")
	if status != exitOK || !strings.HasPrefix(out, "usage: relaykeeper enforce test") {
		t.Errorf("enforce --help = %d, %q", status, out)
	}
}

func TestEnforceUsageErrors(t *testing.T) {
	for _, args := range [][]string{
		nil,
		{"frobnicate"},
		{"rules", "extra"},
		{"test"},
		{"test", "550 a", "550 b"},
		{"test", "--nope", "550 a"},
		{"test", "not a reply"},
		{"test", "--rules", "/nonexistent/rules.conf", "550 a"},
	} {
		status, out, errOut := enforceCmd(t, "", args...)
		if status != exitUsage || out != "" || errOut == "" {
			t.Errorf("runEnforce(%q) = %d, stdout %q, stderr %q; want 2 and a message", args, status, out, errOut)
		}
	}
}

// TestEnforceTestGmailReplies runs every reply of gmail-replies.md
// (internal/enforce/testdata/gmail-replies.txt) through "enforce test",
// as Gmail sends it (lines) and as Postfix logs it (joined): the first
// word printed is the file's verdict.
func TestEnforceTestGmailReplies(t *testing.T) {
	data, err := os.ReadFile("../../internal/enforce/testdata/gmail-replies.txt")
	if err != nil {
		t.Fatal(err)
	}
	n, good := 0, 0
	for i, line := range strings.Split(string(data), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.SplitN(line, " ", 5)
		if len(f) != 5 {
			t.Fatalf("gmail-replies.txt:%d: want VERDICT RULE CODE ENHANCED TEXT", i+1)
		}
		verdict, code, enh, text := f[0], f[2], f[3], f[4]
		// Gmail's lines: at most 60 characters of text after the prefix.
		var lines []string
		cur := ""
		for _, w := range strings.Fields(text + " x1si2 - gsmtp") {
			if cur != "" && len(cur)+1+len(w) > 60 {
				lines = append(lines, cur)
				cur = ""
			}
			cur = strings.TrimSpace(cur + " " + w)
		}
		lines = append(lines, cur)
		for j := range lines {
			sep := "-"
			if j == len(lines)-1 {
				sep = " "
			}
			lines[j] = code + sep + enh + " " + lines[j]
		}
		n++
		ok := true
		for _, reply := range []string{strings.Join(lines, "\r\n"), strings.Join(lines, " ")} {
			status, out, errOut := enforceCmd(t, "", "test", reply)
			if got, _, _ := strings.Cut(out, " "); status != exitOK || got != verdict {
				t.Errorf("gmail-replies.txt:%d: enforce test %q: status %d, first word %q; want %q\n%s%s",
					i+1, reply, status, got, verdict, out, errOut)
				ok = false
			}
		}
		if ok {
			good++
		}
	}
	t.Logf("%d of %d replies get the verdict gmail-replies.md gives them", good, n)
}

// TestTrustedUpstreams: the relay trusts the administrator's list, the
// smarthost and every named transport's next hop, and nobody else.
func TestTrustedUpstreams(t *testing.T) {
	var cfg config.Config
	cfg.Enforce.TrustedUpstreams = []string{"mx.partner.example"}
	cfg.Forward.To = "127.0.0.1:2525"
	cfg.Transports = map[string]config.Transport{"out": {NextHop: "[smtp.relay.example]:587"}, "mx": {}}
	got := cfg.TrustedUpstreams()
	for host, want := range map[string]bool{
		"mx.partner.example[192.0.2.4]:25": true, "127.0.0.1:2525": true, "smtp.relay.example[192.0.2.5]": true,
		"[127.0.0.1]:25": true, "mx.attacker.test[192.0.2.6]:25": false, "gmail-smtp-in.l.google.com[142.250.1.1]": true,
	} {
		if enforce.Trusted(host, got) != want {
			t.Errorf("upstream %s trusted = %v with %q; want %v", host, !want, got, want)
		}
	}
}
