package e2e

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/relaykeeper/relaykeeper/test/harness"
)

// authFilterFile is the fail2ban filter docs/auth.md points to for failed
// logins.
const authFilterFile = "../../etc/fail2ban/filter.d/relaykeeper-auth.conf"

// TestRevOpsFail2banAuthFilter: the shipped fail2ban filter for failed
// logins finds the client's address in every stage=auth reject line the
// relay writes (a wrong password, and the throttle's 454 after it), and in
// no other line of the same log. docs/auth.md sends operators to fail2ban
// for longer bans; the only filter shipped before matched ban lines alone,
// so a password guesser was never banned.
func TestRevOpsFail2banAuthFilter(t *testing.T) {
	t.Parallel()
	r := startAuthRelay(t, plainSecrets, "[auth]\nfailure_limit = 2\nfailure_window = \"10m\"\n")
	c := loginTLS(t, r.addr(), "127.0.0.21", "alice", "wrong1", authFailed)
	mustCmd(t, c, authFailed, "AUTH PLAIN %s", authPlain("mallory", "wrong2"))
	mustCmd(t, c, authThrottle, "AUTH PLAIN %s", authPlain("alice", "alice pw"))
	c.Close()
	ok := loginTLS(t, r.addr(), "127.0.0.22", "alice", "alice pw", authOK)
	ok.Close()
	if !waitFor(5*time.Second, func() bool { return len(authRejects(r, "127.0.0.21")) == 3 }) {
		t.Fatalf("stage=auth reject lines for 127.0.0.21: %v; want 3", fields(authRejects(r, "127.0.0.21")))
	}
	checkAuthFilter(t, r.stderr(), []string{"127.0.0.21", "127.0.0.21", "127.0.0.21"})
}

// checkAuthFilter runs the shipped auth filter, with Go's regexp and with
// fail2ban-regex, over the mail-log lines in stderr, as fail2ban would read
// them from [log] mail_log, and wants exactly the addresses want.
func checkAuthFilter(t *testing.T, stderr string, want []string) {
	t.Helper()
	var lines []string
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z `)
	for _, l := range strings.Split(stderr, "\n") {
		if stamp.MatchString(l) {
			lines = append(lines, l)
		}
	}
	res := authFailRegexps(t)
	var got []string
	for _, l := range lines {
		rest := stamp.ReplaceAllString(l, "")
		for _, re := range res {
			if m := re.FindStringSubmatch(rest); m != nil {
				got = append(got, m[re.SubexpIndex("host")])
				break
			}
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("%s (Go regexp) found %q in the mail log; want %q; log:\n%s", authFilterFile, got, want, strings.Join(lines, "\n"))
	}

	bin, err := exec.LookPath("fail2ban-regex")
	if err != nil {
		harness.Missing(t, "fail2ban-regex not installed (scripts/test-deps.sh): checked with Go's regexp only")
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "mail.log")
	if err := os.WriteFile(log, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "-o", "ip", log, authFilterFile).CombinedOutput()
	if err != nil {
		t.Fatalf("fail2ban-regex: %v\n%s", err, out)
	}
	if got := strings.Fields(string(out)); !slices.Equal(got, want) {
		t.Errorf("fail2ban-regex %s found %q; want %q", authFilterFile, got, want)
	}
}

// authFailRegexps reads the auth filter's failregex lines and turns them
// into Go regexps as fail2ban applies them: <HOST> an address.
func authFailRegexps(t *testing.T) []*regexp.Regexp {
	t.Helper()
	f, err := os.Open(authFilterFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var res []*regexp.Regexp
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var fr string
		switch {
		case strings.HasPrefix(line, "failregex"):
			_, fr, _ = strings.Cut(line, "=")
			in = true
		case in && strings.TrimSpace(line) != "" && (line[0] == ' ' || line[0] == '\t'):
			fr = line
		default:
			in = false
			continue
		}
		fr = strings.ReplaceAll(strings.TrimSpace(fr), "<HOST>", `(?P<host>\d{1,3}(?:\.\d{1,3}){3}|[0-9A-Fa-f]*:[0-9A-Fa-f:.]+)`)
		res = append(res, regexp.MustCompile(fr))
	}
	if len(res) == 0 {
		t.Fatalf("%s: no failregex", authFilterFile)
	}
	return res
}

// TestRevOpsDebugPeerListFile: the Postfix local-relay guide's
// "debug_peer_list = /etc/postfix/debug_peer_list" names a file of peers;
// [log] debug_peers = ["FILE"] traces the clients the file lists, and a
// file with a bad entry stops the relay at start with the file and line.
// Before, the path was taken for a host name: nothing was ever traced, and
// nothing said so.
func TestRevOpsDebugPeerListFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	list := writeFile(t, dir, "debug_peer_list", "# clients to trace\n127.0.0.23 # the test client\n", 0o644)
	r := startPolicyRelay(t, "[log]\ndebug_peers = [\""+list+"\"]\n")
	c := mustDial(t, r.addr(), "127.0.0.23")
	mustCmd(t, c, "250", "EHLO traced.e2e.test")
	c.Close()
	untraced := mustDial(t, r.addr(), "127.0.0.24")
	mustCmd(t, untraced, "250", "EHLO untraced.e2e.test")
	untraced.Close()
	if !waitFor(5*time.Second, func() bool { return strings.Contains(r.stderr(), `line="EHLO traced.e2e.test"`) }) {
		t.Errorf("no trace of 127.0.0.23's EHLO with debug_peers = [%q]; log:\n%s", list, r.stderr())
	}
	if strings.Contains(r.stderr(), "debug_peer=127.0.0.24:") {
		t.Errorf("127.0.0.24, not in %s, was traced; log:\n%s", list, r.stderr())
	}

	bad := writeFile(t, dir, "bad_list", "127.0.0.1\n10.0.0.0/40\n", 0o644)
	_, errOut, code := runBinary(t, harness.Binary(t), "", "--as-server", "--port", strconv.Itoa(harness.FreePort(t)), "--spool-dir", t.TempDir(),
		"--config", writeConfig(t, "[log]\ndebug_peers = [\""+bad+"\"]\n"))
	if want := bad + `:2: "10.0.0.0/40" is not a network`; code != 2 || !strings.Contains(errOut, want) {
		t.Errorf("relaykeeper with debug_peers = [%q]: exit %d, %q; want 2 and %q", bad, code, errOut, want)
	}
}

// TestRevOpsContentFilterPostfixForm: content_filter written as the Postfix
// guide writes it, "scan:localhost:10025" (transport:nexthop), hands every
// message to the filter at localhost:10025. Before, the value was dialled
// as it stood ("too many colons in address") and every message stayed
// deferred, with nothing said at start.
func TestRevOpsContentFilterPostfixForm(t *testing.T) {
	t.Parallel()
	filter := harness.NewFakeSMTP(t, harness.Script{})
	_, port, _ := strings.Cut(filter.Addr(), ":")
	cfg := writeConfig(t, fmt.Sprintf("[routing]\ncontent_filter = \"scan:localhost:%s\"\n", port))
	r := startRelay(t, "127.0.0.1", "--as-server", "--forward-on-disconnect", "--no-bounces",
		"--config", cfg, "--interface", "127.0.0.1", "--spool-dir", t.TempDir())
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("to the filter"))
	txs := filter.WaitTransactions(t, 1, 20*time.Second)
	if data := string(txs[0].Data); !strings.Contains(data, "X-Relaykeeper-Original-Client") {
		t.Errorf("the filter's copy has no X-Relaykeeper-Original-Client header:\n%s", head(data))
	}
	e := r.waitEvent("delivery", 10*time.Second, nil)
	if e.Get("result") != "sent" {
		t.Errorf("delivery to the content filter: %v; want result=sent", e.Fields)
	}
}

// TestRevOpsConfigErrorLines: a restriction or a network in the
// configuration file that does not parse is reported with the file and
// line of its setting, as the file's other mistakes are, and every one of
// them at once. Before, these named only the key.
func TestRevOpsConfigErrorLines(t *testing.T) {
	t.Parallel()
	cfg := writeFile(t, t.TempDir(), "relaykeeper.toml", "[policy]\n\nclient_restrictions = [\"permit_mynetwork\"]\nmynetworks = [\"10.0.0.0/33\"]\n", 0o644)
	_, errOut, code := runBinary(t, harness.Binary(t), "", "--as-server", "--port", strconv.Itoa(harness.FreePort(t)),
		"--spool-dir", t.TempDir(), "--config", cfg)
	for _, want := range []string{
		cfg + `:3: policy.client_restrictions: "permit_mynetwork": unknown restriction`,
		cfg + `:4: policy.mynetworks: "10.0.0.0/33" is not a network`,
	} {
		if code != 2 || !strings.Contains(errOut, want) {
			t.Errorf("relaykeeper with a bad [policy]: exit %d, %q; want 2 and %q", code, errOut, want)
		}
	}
}

// TestRevOpsEmailRelayConfFile: "emailrelay /etc/emailrelay.conf", the
// E-MailRelay guide's start-up with switches in a file, works with
// relaykeeper in its place: the file's switches (one a line, no dashes)
// run the relay, and the message lands in the spool the file names.
// Before, the file was taken for an unknown command.
func TestRevOpsEmailRelayConfFile(t *testing.T) {
	t.Parallel()
	spoolDir := t.TempDir()
	conf := writeFile(t, t.TempDir(), "emailrelay.conf",
		"# switches, one a line\nas-server\ninterface 127.0.0.1\nspool-dir "+spoolDir+"\n", 0o644)
	r := startRelay(t, "127.0.0.1", conf)
	mustSend(t, r.addr(), "alice@example.org", []string{"bob@example.net"}, message("from a conf file"))
	envs, _ := filepath.Glob(filepath.Join(spoolDir, "*.envelope"))
	if len(envs) != 1 {
		t.Errorf("envelopes in %s, the spool-dir of %s: %v; want 1", spoolDir, conf, envs)
	}
}
